"""Few-shot quality at equal wall time: which recipe gives the best samples from ~100-200 images in
the same minutes on this machine?

For each recipe (default: stylegan2-cats, lightweight-cats, dcgan-cats), one after the other and
alone on the machine:

1. `ganforge train` for `--minutes` of wall time (the process is stopped with SIGTERM, which makes
   the trainer checkpoint and exit; scores during training are switched off so every recipe spends
   its minutes training), with checkpoints every `--checkpoint-every` steps (per recipe, so that
   each gets several checkpoints in the budget);
2. `ganforge eval --all -n CURVE_NUM`: KID (and the rest) of every checkpoint, for the curve;
3. the checkpoint with the best curve KID is the recipe's pick: `ganforge eval -n NUM` (FID, KID with
   its std, precision/recall, memorisation) and `ganforge sample` of 64 images from it.

Run from the repository root:

    OMP_NUM_THREADS=2 GANFORGE_DATA=../shared/data .venv/bin/python -m benchmarks.fewshot \\
        --minutes 20 --out runs/fewshot --docs docs/images
    .venv/bin/python -m benchmarks.fewshot --report --out runs/fewshot   # tables and figure again
    .venv/bin/python -m benchmarks.fewshot --recipes benchmarks/recipes/lightweight-cats-ada.toml \\
        --minutes 20 --out runs/fewshot --append                          # one more recipe, same settings

Writes into `--out`: `fewshot.json` (every number, the CPU, the command lines; after each recipe,
so a later failure keeps what is done), `table.md`, `kid-vs-time.png` (KID against training
minutes, one curve per recipe), and per recipe its run folder and `NAME-samples.png`; with
`--docs DIR` it copies the figure and the picked samples there. `--report` reads a saved
`fewshot.json` (benchmarks/results/fewshot.json is one) and writes the table and figure again.

Scores need the standard FID network (`ganforge metrics install`). Reference set: the recipe's own
training images (179 grumpy cats at 64 px for the cat recipes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from benchmarks import harness

DEFAULT_RECIPES = ("stylegan2-cats", "lightweight-cats", "dcgan-cats")
# Steps between checkpoints (about every 2-3 minutes on a 2-core CPU); other recipes: --checkpoint-every.
CHECKPOINT_EVERY = {"stylegan2-cats": 400, "lightweight-cats": 400, "lightweight-cats-ada": 400, "dcgan-cats": 1600}
PUBLISHED = [  # 100-shot Grumpy cat, FID of 5k samples vs the 100 training images, 256 px (published)
    ("StyleGAN2", 48.9), ("StyleGAN2 + DiffAugment", 27.08), ("FastGAN", 26.65), ("GenCo", 17.79),
]


def train(recipe: str, run: Path, minutes: float, checkpoint_every: int, extra: list[str]) -> dict:
    """Train for ``minutes`` of wall time, then stop the run the way a user's Ctrl-C would."""
    cmd = harness.ganforge("train", "--recipe", recipe, "-o", str(run), "--no-progress",
                           "--set", "train.steps=1000000", "--set", "eval.every=0", "--set", "log.keep=1000",
                           "--set", f"log.checkpoint_every={checkpoint_every}", "--set", "log.gif=false", *extra)
    print("$", " ".join(cmd[2:]), flush=True)
    # SIGTERM: the trainer checkpoints the current step and exits 143
    code, wall = harness.run_for(cmd, minutes * 60, signal.SIGTERM)
    if code not in (0, 143):
        raise SystemExit(f"{recipe}: training failed with exit code {code}")
    return {"command": " ".join(cmd[2:]), "wall_s": round(wall, 1)}


def checkpoint_times(run: Path) -> dict[int, float]:
    """Seconds of training at each logged step (the trainer's own clock in metrics.jsonl)."""
    return {int(row["step"]): float(row["time"]) for row in harness.read_metrics(run) if "time" in row and "eval" not in row}


def evaluate(run: Path, curve_num: int, num: int, samples: Path, extractor: str) -> dict:
    curve_json = run / "eval" / "curve.json"
    subprocess.run([*harness.ganforge("eval"), str(run), "--all", "-n", str(curve_num), "-m", "kid", "--no-progress",
                    "--extractor", extractor, "-o", str(curve_json)], check=True)
    curve = json.loads(curve_json.read_text())["results"]
    times = checkpoint_times(run)
    points = []
    for r in curve:
        step = int(r["step"])
        t = times.get(step, max((s_t for s, s_t in times.items() if s <= step), default=0.0))
        scores = {k.rpartition("/")[2]: v for k, v in r["scores"].items()}  # pixels/kd -> kd
        kid = scores.get("kid", scores.get("kd"))
        points.append({"step": step, "minutes": round(t / 60, 2), "kid": kid,
                       "kid_std": scores.get("kid_std", scores.get("kd_std"))})
    best = min(points, key=lambda p: p["kid"])
    picked = run / "checkpoints" / f"step-{best['step']:08d}"
    final_json = run / "eval" / "picked.json"
    subprocess.run([*harness.ganforge("eval"), str(picked), "-n", str(num), "--no-progress", "--extractor", extractor,
                    "-o", str(final_json)], check=True)
    subprocess.run([*harness.ganforge("sample"), "--checkpoint", str(picked), "-n", "64", "--seed", "0", "-o", str(samples)],
                   check=True)
    final = json.loads(final_json.read_text())
    final["scores"] = {k.rpartition("/")[2]: v for k, v in final["scores"].items()}
    speed = harness.logged_speed(harness.read_metrics(run))
    return {"curve": points, "picked_step": best["step"], "picked_minutes": best["minutes"],
            "scores": final["scores"], "num_generated": final["num_generated"], "num_real": final["num_real"],
            "real_source": final["real_source"], "steps": max(max(times), max(p["step"] for p in points)), "minutes": round(max(times.values()) / 60, 2),
            "images_per_s": speed, "samples": str(samples),
            "nearest": str(run / "eval" / f"step-{best['step']:08d}-nearest.png")}


def fmt(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


def report(out: Path, docs: Path | None) -> None:
    data = json.loads((out / "fewshot.json").read_text())
    results = data["results"]
    lines = [
        f"Equal wall time: {data['minutes']:g} min of training per recipe, one after the other, alone on "
        f"{data['cpu'].get('model', '?')} ({data['cpu'].get('cores')} cores, avx512_bf16: {data['cpu'].get('avx512_bf16')}). "
        f"Scores: standard FID network, {data['num']} samples of the picked checkpoint vs the {next(iter(results.values()))['num_real']} "
        f"training images; the pick is the best KID of {data['curve_num']} samples over the run's checkpoints.",
        "",
        "| recipe | steps | img/s | picked step (min) | FID | KID ± std | precision | recall | closer than train-train | near-copies |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        s = r["scores"]
        lines.append(
            f"| `{name}` | {r['steps']:,} | {fmt(r['images_per_s'], 1)} | {r['picked_step']:,} ({r['picked_minutes']:.1f}) "
            f"| {fmt(s.get('fid'), 1)} | {fmt(s.get('kid'))} ± {fmt(s.get('kid_std'))} | {fmt(s.get('precision'))} "
            f"| {fmt(s.get('recall'))} | {s.get('memorisation_closer', 0):.0%} | {int(s.get('memorisation_copies', 0))} |"
        )
    (out / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name, r in results.items():
        xs = [p["minutes"] for p in r["curve"]]
        ys = [p["kid"] for p in r["curve"]]
        err = [p["kid_std"] or 0 for p in r["curve"]]
        ax.errorbar(xs, ys, yerr=err, marker="o", linewidth=1.2, capsize=2, label=name)
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel(f"KID ({data['curve_num']} samples vs training set)")
    ax.set_title(f"Few-shot: KID against wall time ({data['cpu'].get('model', 'CPU')}, {data['cpu'].get('cores')} cores)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    figure = out / "kid-vs-time.png"
    fig.savefig(figure)
    plt.close(fig)
    if docs is not None:
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copy(figure, docs / "fewshot-kid-vs-time.png")
        for name, r in results.items():
            from PIL import Image

            Image.open(r["samples"]).convert("RGB").save(docs / f"fewshot-{name}.jpg", quality=90)  # a quarter of the PNG
            if Path(r["nearest"]).is_file():
                shutil.copy(r["nearest"], docs / f"fewshot-{name}-nearest.png")
    print(f"wrote {out / 'table.md'} and {figure}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fewshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES))
    parser.add_argument("--minutes", type=float, default=20.0, help="training wall time per recipe")
    parser.add_argument("--num", type=int, default=1000, help="samples scored at each recipe's picked checkpoint")
    parser.add_argument("--curve-num", type=int, default=250, help="samples scored at every checkpoint for the curve")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (all recipes)")
    parser.add_argument("--extractor", default="inception-v3-fid", help="feature network (only the standard one gives FID/KID)")
    parser.add_argument("--set", action="append", default=[], help="extra recipe override for every run (KEY=VALUE)")
    parser.add_argument("--out", type=Path, default=Path("runs/fewshot"))
    parser.add_argument("--docs", type=Path, default=None, help="copy the figure and the picked samples here")
    parser.add_argument("--report", action="store_true", help="only rebuild the table and figure from --out")
    parser.add_argument("--append", action="store_true",
                        help="add these recipes to --out's earlier results (same machine, same settings) instead of starting afresh")
    args = parser.parse_args(argv)
    if args.report:
        report(args.out, args.docs)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    extra = [x for kv in args.set for x in ("--set", kv)]
    data = {"minutes": args.minutes, "extractor": args.extractor, "num": args.num, "curve_num": args.curve_num, "cpu": harness.cpu_description(),
            "threads": os.environ.get("OMP_NUM_THREADS"), "published_100shot_fid_256px": PUBLISHED, "results": {}}
    path = args.out / "fewshot.json"
    if args.append and path.is_file():
        before = json.loads(path.read_text())
        same = {k: before.get(k) for k in ("minutes", "num", "curve_num", "extractor")}
        if same != {k: data[k] for k in same}:
            raise SystemExit(f"--append needs the settings of {path}: {same}")
        data["results"] = before["results"]
    for recipe in args.recipes:
        name = Path(recipe).stem if recipe.endswith(".toml") else recipe  # a recipe file: its name
        run = args.out / name
        if run.exists():
            shutil.rmtree(run)
        every = args.checkpoint_every or CHECKPOINT_EVERY.get(name, 500)
        trained = train(recipe, run, args.minutes, every, extra)
        result = evaluate(run, args.curve_num, args.num, args.out / f"{name}-samples.png", args.extractor)
        data["results"][name] = {**trained, **result}
        harness.write_json(path, data)  # keep what is done if a later run fails
    report(args.out, args.docs)


if __name__ == "__main__":
    main()
