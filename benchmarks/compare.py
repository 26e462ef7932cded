"""Side-by-side training speed: ganforge vs. plain-PyTorch re-implementations of two reference
loops (``reference_loops.py``: pytorch/examples DCGAN, junyanz CycleGAN), same architectures,
settings and data, one after the other in this one process.

For each configuration: steady-state images/s (median over rounds, after warm-up steps), the wall
time of the whole command (start-up included) for a fixed number of steps, the FLOPs of one
training step (``torch.utils.flop_counter.FlopCounterMode``: forward and backward of every
network) and the achieved GFLOP/s as a share of this CPU's peak (a large matmul, same threads).
Progress grids and checkpoints are off in the timed steps of both; the whole-command runs end with
one checkpoint and one grid each (ganforge always writes them at the end; the reference script
saves its networks and a grid of its last images).

    GANFORGE_DATA=/path/to/data OMP_NUM_THREADS=2 python benchmarks/compare.py --json out.json
    ... --quick --only dcgan          # a few steps, to check that everything runs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_loops import make_loop  # noqa: E402

REFERENCE_SCRIPT = Path(__file__).resolve().parent / "reference_loops.py"
# Both loops log no grid, checkpoint or score in their timed steps.
QUIET_LOG = ("eval.every=0", "log.gif=false", "log.plots=false", "log.sample_every=1000000", "log.checkpoint_every=1000000")


@dataclass(frozen=True)
class Setup:
    loop: str  # reference_loops kind
    image_size: int
    recipe: str
    sets: tuple[str, ...]  # ganforge overrides that match the reference
    batch: int
    grid: int  # log.num_samples: the final grid's size, close to what the reference saves


def _cyclegan(size: int) -> Setup:
    sets = (
        "generator.width=64", "generator.n_blocks=9", "generator.upsample=convtranspose",
        "generator.norm=instance", "generator.padding=reflect",
        "discriminator.width=64", "discriminator.n_layers=3", "discriminator.norm=instance",
        f"discriminator.image_size={size}", f"data.image_size={size}",
        "loss.name=lsgan", "algorithm.pool_size=50", "algorithm.cycle_weight=10.0", "algorithm.identity_weight=0.5",
        "train.batch_size=1", "train.lr_decay_start=1.0",
        "augment.diffaug=false", "augment.deluxe.scale=1.0", "augment.deluxe.flip=true",
    )
    return Setup("cyclegan", size, "cyclegan-cats", sets, batch=1, grid=6)


SETUPS = {
    "dcgan": Setup("dcgan", 64, "dcgan-cats-basic",
                   ("generator.width=64", "discriminator.width=64", "loss.name=vanilla"), batch=16, grid=16),
    "cyclegan64": _cyclegan(64),
    "cyclegan128": _cyclegan(128),
}


# --------------------------------------------------------------------------- ganforge side


def ganforge_sets(setup: Setup, steps: int, threads: int, bf16: bool, log_every: int = 10) -> list[str]:
    return [
        *setup.sets, *QUIET_LOG, f"train.steps={steps}", f"train.threads={threads}",
        f'train.mixed_precision="{"bf16" if bf16 else "no"}"', f"log.every={log_every}", f"log.num_samples={setup.grid}",
    ]


def _train(setup: Setup, sets: list[str], run_dir: Path) -> None:
    from rich.console import Console

    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe
    from ganforge.train.loop import train

    registry = get_registry()
    with open(os.devnull, "w") as devnull:
        train(load_recipe(setup.recipe, registry, sets), registry, run_dir, progress=False, console=Console(file=devnull))


def ganforge_networks(setup: Setup) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The generator and discriminator ganforge builds for ``setup`` (for parameter checks)."""
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe

    registry = get_registry()
    recipe = load_recipe(setup.recipe, registry, list(setup.sets))
    parts = [recipe.parts[s] for s in ("generator", "discriminator")]
    return tuple(registry.get(p.kind, p.name).build(p.config) for p in parts)


def ganforge_rate(setup: Setup, steps: int, warmup: int, threads: int, bf16: bool) -> float:
    """Images/s of the real trainer, from its own metrics log between step ``warmup`` and the end."""
    from ganforge.train.loop import METRICS_FILE

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        _train(setup, ganforge_sets(setup, warmup + steps, threads, bf16, math.gcd(warmup, steps)), run)
        times = {r["step"]: r["time"] for r in map(json.loads, (run / METRICS_FILE).read_text().splitlines())}
    torch.set_num_threads(threads)
    return steps * setup.batch / (times[warmup + steps] - times[warmup])


def ganforge_flops(setup: Setup, threads: int, bf16: bool) -> float:
    """FLOPs per image of one ganforge step: a 2-step run minus a 1-step run (same start-up and end)."""

    def count(steps: int) -> int:
        with tempfile.TemporaryDirectory() as tmp, FlopCounterMode(display=False) as counter:
            _train(setup, ganforge_sets(setup, steps, threads, bf16), Path(tmp) / "run")
        return counter.get_total_flops()

    flops = count(2) - count(1)
    torch.set_num_threads(threads)
    return flops / setup.batch


def ganforge_command(setup: Setup, steps: int, threads: int, bf16: bool, out: Path) -> list[str]:
    exe = Path(sys.executable).with_name("ganforge")
    if not exe.exists():
        raise SystemExit(f"no ganforge command next to {sys.executable}; install ganforge in this environment")
    sets = [a for s in ganforge_sets(setup, steps, threads, bf16) for a in ("--set", s)]
    return [str(exe), "train", "--recipe", setup.recipe, *sets, "--output-dir", str(out), "--no-progress"]


# --------------------------------------------------------------------------- reference side


def reference_rate(setup: Setup, steps: int, warmup: int, bf16: bool, data: Path, workers: int) -> float:
    loop = make_loop(setup.loop, data, setup.image_size, bf16, workers)
    for _ in range(warmup):
        loop.step()
    t0 = time.perf_counter()
    images = sum(loop.step() for _ in range(steps))
    return images / (time.perf_counter() - t0)


def reference_flops(setup: Setup, bf16: bool, data: Path) -> float:
    loop = make_loop(setup.loop, data, setup.image_size, bf16)
    loop.step()  # first step outside: lazy initialisations
    with FlopCounterMode(display=False) as counter:
        images = loop.step()
    return counter.get_total_flops() / images


def reference_command(setup: Setup, steps: int, threads: int, bf16: bool, data: Path, workers: int, out: Path) -> list[str]:
    return [
        sys.executable, str(REFERENCE_SCRIPT), setup.loop, "--image-size", str(setup.image_size), "--steps", str(steps),
        "--data", str(data), "--out", str(out), "--threads", str(threads), "--workers", str(workers),
        "--precision", "bf16" if bf16 else "fp32",
    ]


# --------------------------------------------------------------------------- measuring


def wall_time(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return wall


def matmul_peak(dtype: torch.dtype, n: int = 3072, reps: int = 5) -> float:
    """Best GFLOP/s of an n x n x n matmul on the current threads."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def measure(name: str, setup: Setup, args, data: Path) -> dict:
    bf16 = args.precision == "bf16"
    rates = {"reference": [], "ganforge": []}
    for r in range(args.rounds):
        order = ("reference", "ganforge") if r % 2 == 0 else ("ganforge", "reference")
        for who in order:
            if who == "reference":
                rates[who].append(reference_rate(setup, args.steps, args.warmup, bf16, data, args.workers))
            else:
                rates[who].append(ganforge_rate(setup, args.steps, args.warmup, args.threads, bf16))
        print(f"  {name} round {r + 1}: reference {rates['reference'][-1]:.2f}, ganforge {rates['ganforge'][-1]:.2f} images/s", flush=True)
    result = {"setup": {"recipe": setup.recipe, "sets": list(setup.sets), "image_size": setup.image_size, "batch": setup.batch},
              "images_per_s": rates}
    result["flops_per_image"] = {"reference": reference_flops(setup, bf16, data), "ganforge": ganforge_flops(setup, args.threads, bf16)}
    if args.wall_steps:
        with tempfile.TemporaryDirectory() as tmp:
            result["wall_s"] = {
                "steps": args.wall_steps,
                "reference": wall_time(reference_command(setup, args.wall_steps, args.threads, bf16, data, args.workers, Path(tmp) / "ref"), args.threads),
                "ganforge": wall_time(ganforge_command(setup, args.wall_steps, args.threads, bf16, Path(tmp) / "gf"), args.threads),
            }
    return result


def summarise(name: str, res: dict, peak: float) -> dict:
    med = {k: statistics.median(v) for k, v in res["images_per_s"].items()}
    gflops = {k: res["flops_per_image"][k] * med[k] / 1e9 for k in med}
    return {
        "config": name, "median_images_per_s": med, "ratio": med["ganforge"] / med["reference"],
        "gflop_per_image": {k: v / 1e9 for k, v in res["flops_per_image"].items()},
        "gflop_per_s": gflops, "percent_of_peak": {k: 100 * v / peak for k, v in gflops.items()},
    }


def table(summaries: list[dict], results: dict) -> str:
    rows = ["| config | impl | images/s (median) | ganforge / reference | GFLOP per image | GFLOP/s | % of peak | whole command (s) |",
            "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        wall = results[s["config"]].get("wall_s", {})
        for who in ("reference", "ganforge"):
            ratio = f"{s['ratio']:.2f}x" if who == "ganforge" else ""
            w = f"{wall[who]:.1f} ({wall['steps']} steps)" if wall else "-"
            rows.append(f"| {s['config']} | {who} | {s['median_images_per_s'][who]:.2f} | {ratio} | "
                        f"{s['gflop_per_image'][who]:.2f} | {s['gflop_per_s'][who]:.1f} | {s['percent_of_peak'][who]:.1f} | {w} |")
    return "\n".join(rows)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", choices=sorted(SETUPS), help="configurations to run (repeatable; default all)")
    p.add_argument("--steps", type=int, help="timed steps per round (default: dcgan 40, cyclegan64 12, cyclegan128 4)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--wall-steps", type=int, help="steps of the whole-command runs (0: skip them; default: as --steps)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or 2)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the reference loops (0: decode in the training process)")
    p.add_argument("--quick", action="store_true", help="2 timed steps after 1 warm-up, 1 round, 1-step commands: a smoke test")
    p.add_argument("--peak-size", type=int, default=3072, help="side of the square matmuls that measure the peak")
    p.add_argument("--json", type=Path, help="write all measurements to this file")
    p.add_argument("--report", type=Path, nargs="+", metavar="JSON", help="measure nothing: print the README block of saved --json files")
    args = p.parse_args(argv)
    for key in ("steps", "rounds", "threads", "peak_size"):
        value = getattr(args, key)
        if value is not None and value < 1:
            p.error(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    for key in ("warmup", "wall_steps", "workers"):
        value = getattr(args, key)
        if value is not None and value < 0:
            p.error(f"--{key.replace('_', '-')} must not be negative, got {value}")
    if args.quick:
        args.steps, args.warmup, args.rounds, args.peak_size = args.steps or 2, 1, 1, 1024
        args.wall_steps = 1 if args.wall_steps is None else args.wall_steps
    return args


DEFAULT_STEPS = {"dcgan": 40, "cyclegan64": 12, "cyclegan128": 4}


def cpu_model() -> str:
    """The CPU's model name and whether it has AVX-512 / AVX-512 BF16 (Linux; else the platform's word)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    return f"{name} ({', '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags)})"


def data_root() -> Path:
    root = os.environ.get("GANFORGE_DATA")
    if not root or not (Path(root) / "grumpify-cats" / "grumpy").is_dir():
        raise SystemExit("set GANFORGE_DATA to the folder holding grumpify-cats/{grumpy,russian_blue}")
    return Path(root)


def report(path: Path) -> str:
    """A saved run as markdown: conditions, the table and every round's images/s."""
    saved = json.loads(path.read_text())
    meta, results = saved["meta"], saved["results"]
    peaks = meta["peak_gflop_per_s"]
    rounds = "; ".join(
        f"{name} ({r['timed_steps']} timed steps): reference " + " / ".join(f"{v:.2f}" for v in r["images_per_s"]["reference"])
        + ", ganforge " + " / ".join(f"{v:.2f}" for v in r["images_per_s"]["ganforge"])
        for name, r in results.items()
    )
    return "\n".join([
        f"**{meta['precision']}**, measured {meta['date']}, {meta['cpu']}, torch {meta['torch']}, {meta['threads']} threads, "
        f"median of {meta['rounds']} rounds after {meta['warmup']} warm-up steps, reference DataLoader workers {meta['workers']}; "
        f"matmul peak on these threads: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s "
        f"(% of peak: of the {meta['precision']} one).",
        "", table(saved["summary"], results), "", f"Per round (images/s): {rounds}.", "",
    ])


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.report:
        print("\n".join(report(p) for p in args.report))
        return
    data = data_root()
    torch.set_num_threads(args.threads)
    peaks = {"fp32": matmul_peak(torch.float32, args.peak_size), "bf16": matmul_peak(torch.bfloat16, args.peak_size)}
    print(f"{cpu_model()}, torch {torch.__version__}; matmul peak on {args.threads} threads: "
          f"fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__, "cpu": cpu_model(),
            "threads": args.threads, "precision": args.precision, "warmup": args.warmup, "rounds": args.rounds,
            "workers": args.workers, "peak_gflop_per_s": peaks}
    results, summaries, failed = {}, [], []
    for name in args.only or list(SETUPS):
        run_args = argparse.Namespace(**vars(args))
        run_args.steps = args.steps or DEFAULT_STEPS[name]
        run_args.wall_steps = run_args.steps if args.wall_steps is None else args.wall_steps
        t0 = time.perf_counter()
        try:
            results[name] = measure(name, SETUPS[name], run_args, data)
        except Exception:  # noqa: BLE001 - report it and go on with the next configuration
            traceback.print_exc()
            failed.append(name)
            continue
        results[name]["timed_steps"], results[name]["measuring_s"] = run_args.steps, time.perf_counter() - t0
        summaries.append(summarise(name, results[name], peaks[args.precision]))
        print(f"  {name}: {results[name]['measuring_s']:.0f} s of measuring\n{table(summaries[-1:], results)}", flush=True)
        if args.json:  # after every configuration: a later failure keeps what was measured
            args.json.write_text(json.dumps({"meta": meta, "results": results, "summary": summaries}, indent=1))
    print(f"\n{args.precision}, {args.threads} threads, median of {args.rounds} rounds "
          f"(% of the {args.precision} matmul peak, {peaks[args.precision]:.1f} GFLOP/s):\n")
    print(table(summaries, results))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
