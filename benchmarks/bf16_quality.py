"""Does bf16 autocast cost quality? fp32 and bf16 runs of one recipe, scored by KID at equal steps
and at equal training time.

For each seed it trains the recipe in fp32 for `--steps` and in bf16 for `--bf16-steps`, one run
after the other, with the recipe's in-training KID ([eval] every/num) and every checkpoint kept. The
recipe must keep a constant learning rate, so that a longer run's first steps are what a shorter run
would have trained. It then prints, per run, the training speed (median images/s of the log windows)
and the KID curve against steps and training seconds (wall time less the time spent scoring), and
two comparisons per seed:

- equal steps: KID at the fp32 evaluation (`--fp32-steps`, default its last), fp32 vs bf16;
- equal time: the bf16 evaluation whose training time is nearest that fp32 evaluation's.

`--simulate` trains the bf16 runs with benchmarks/bf16_sim.py (bf16's roundings on fp32 kernels), for
CPUs that emulate bf16, where a real bf16 run is 14-20x slower. Their own wall time then says nothing
about bf16, so equal time comes from `--speedup`, bf16's speed over fp32 measured on a CPU with native
bf16: a simulated run's training seconds = its steps x the fp32 run's seconds per step / speedup.

    # on a CPU with native bf16 (real autocast), alone on the machine
    .venv/bin/python benchmarks/bf16_quality.py --train --out runs/bf16q --seeds 0 1 --steps 6400 --bf16-steps 9600
    # on any CPU: simulated bf16, equal time from a speed ratio measured on a native-bf16 CPU
    .venv/bin/python benchmarks/bf16_quality.py --train --simulate --speedup 1.30 --out runs/bf16q \
        --seeds 0 1 --steps 8000 --bf16-steps 8000 --fp32-steps 6400 --figure docs/images/bf16-vs-fp32-kid.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

GANFORGE = [sys.executable, "-m", "ganforge"]
SIMULATOR = [sys.executable, str(Path(__file__).with_name("bf16_sim.py"))]
NAMES = {"no": "fp32", "bf16": "bf16", "sim": "sim"}  # run folders: fp32-sN, bf16-sN, sim-sN


def run_dir(out: Path, precision: str, seed: int) -> Path:
    return out / f"{NAMES[precision]}-s{seed}"


def train(out: Path, recipe: str, seed: int, precision: str, steps: int | None) -> None:
    head = [*SIMULATOR, "train"] if precision == "sim" else [*GANFORGE, "train"]
    cmd = [*head, "--recipe", recipe, "--mixed-precision", "no" if precision == "sim" else precision,
           "--set", f"seed={seed}", "--set", "log.keep=100", "-o", str(run_dir(out, precision, seed)), "--no-progress"]
    if steps:
        cmd += ["--steps", str(steps)]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def read_run(path: Path) -> dict:
    rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    speed = statistics.median(r["images_per_s"] for r in rows if "images_per_s" in r)
    evals, scoring = [], 0.0
    for r in rows:
        if "eval" in r:
            scoring += r.get("eval_seconds", 0.0)
            evals.append({"step": r["step"], "train_s": r["time"] - scoring, "kid": r["eval"]["kid"]})
    last = max(r["step"] for r in rows)
    total = max(r["time"] for r in rows if "time" in r) - scoring
    return {"speed": speed, "evals": evals, "steps": last, "train_s": total}


def kid_at(run: dict, step: int) -> dict | None:
    return next((e for e in run["evals"] if e["step"] == step), None)


def rescale_time(bf: dict, fp: dict, speedup: float) -> None:
    """A simulated bf16 run's training seconds as a native-bf16 run's: the fp32 run's seconds per step / speedup."""
    per_step = fp["train_s"] / fp["steps"] / speedup
    for e in bf["evals"]:
        e["train_s"] = e["step"] * per_step
    bf["train_s"] = bf["steps"] * per_step


def report(out: Path, seeds: list[int], figure: Path | None, low: str = "bf16", speedup: float | None = None,
           fp32_steps: int | None = None, recipe: str = "dcgan-cats") -> None:
    runs = {(p, s): read_run(run_dir(out, p, s)) for s in seeds for p in ("no", low)}
    if low == "sim":
        for s in seeds:
            rescale_time(runs[("sim", s)], runs[("no", s)], speedup)
    print("| run | steps | images/s (median) | training s | KID by step (training s) |")
    print("|---|---|---|---|---|")
    for (p, s), r in runs.items():
        curve = ", ".join(f"{e['step']}: {e['kid']:.3f} ({e['train_s']:.0f})" for e in r["evals"])
        speed = f"{r['speed']:.1f}" if p != "sim" else f"({r['speed']:.1f} simulated)"
        print(f"| {NAMES[p]} seed {s} | {r['steps']} | {speed} | {r['train_s']:.0f} | {curve} |")
    print()
    print(f"| seed | {NAMES[low]} / fp32 speed | equal steps (step): fp32 KID | {NAMES[low]} KID | "
          f"equal time: fp32 KID (step, s) | {NAMES[low]} KID (step, s) |")
    print("|---|---|---|---|---|---|")
    for s in seeds:
        fp, bf = runs[("no", s)], runs[(low, s)]
        # equal time: the fp32 run stopped at `fp32_steps` (default: its last evaluation) against the
        # low-precision evaluation whose training time is nearest
        last = kid_at(fp, fp32_steps) if fp32_steps else fp["evals"][-1]
        fp_s = last["train_s"]
        same_step = kid_at(bf, last["step"])
        same_time = min(bf["evals"], key=lambda e: abs(e["train_s"] - fp_s))
        ratio = f"{speedup:.2f}x (given)" if low == "sim" else f"{bf['speed'] / fp['speed']:.2f}x"
        print(f"| {s} | {ratio} | ({last['step']}) {last['kid']:.3f} | "
              f"{same_step['kid']:.3f} | {last['kid']:.3f} ({last['step']}, {fp_s:.0f}) | "
              f"{same_time['kid']:.3f} ({same_time['step']}, {same_time['train_s']:.0f}) |")
    scored = sorted((out.glob("*/eval500-*.json")))
    if scored:  # optional: `ganforge eval CKPT -n 500 -o RUN/eval500-STEP.json` on chosen checkpoints
        print("\nscored afterwards (`ganforge eval`, more images than in training):\n")
        print("| run | step | generated vs real | KID | FID |")
        print("|---|---|---|---|---|")
        for path in scored:
            r = json.loads(path.read_text())
            sc = r["scores"]
            print(f"| {path.parent.name} | {r['step']} | {r['num_generated']} vs {r['num_real']} | "
                  f"{sc['kid']:.3f} +- {sc.get('kid_std', 0):.3f} | {sc.get('fid', float('nan')):.1f} |")
    if figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
        for (p, s), r in runs.items():
            ax.plot([e["step"] for e in r["evals"]], [e["kid"] for e in r["evals"]], marker="o",
                    color="tab:blue" if p == "no" else "tab:orange", linestyle="-" if s == seeds[0] else "--",
                    label=f"{'bf16 (simulated)' if p == 'sim' else NAMES[p]} seed {s}")
        ax.set_xlabel("training step")
        ax.set_title(f"{recipe}: KID during training", fontsize=10)
        ax.set_ylabel("KID (lower is better)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(figure)
        print(f"\nfigure: {figure}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder holding the runs (fp32-sN, bf16-sN)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--recipe", default="dcgan-cats")
    p.add_argument("--train", action="store_true", help="train the runs first (else only read them)")
    p.add_argument("--steps", type=int, help="fp32 steps (default: the recipe's)")
    p.add_argument("--bf16-steps", type=int, default=9600, help="bf16 steps (a multiple of eval.every)")
    p.add_argument("--simulate", action="store_true", help="bf16 runs simulated on fp32 kernels (bf16_sim.py)")
    p.add_argument("--speedup", type=float, help="with --simulate: bf16's speed over fp32 on a native-bf16 CPU")
    p.add_argument("--fp32-steps", type=int, help="the fp32 evaluation the equal-time comparison starts from")
    p.add_argument("--figure", type=Path)
    args = p.parse_args()
    low = "sim" if args.simulate else "bf16"
    if args.simulate and not args.speedup:
        p.error("--simulate needs --speedup (bf16 / fp32 speed measured on a CPU with native bf16)")
    if args.train:
        for s in args.seeds:
            train(args.out, args.recipe, s, "no", args.steps)
            train(args.out, args.recipe, s, low, args.bf16_steps)
    report(args.out, args.seeds, args.figure, low, args.speedup, args.fp32_steps, args.recipe)


if __name__ == "__main__":
    main()
