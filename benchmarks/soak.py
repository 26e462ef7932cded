"""Soak: kill training with SIGKILL at random moments, resume each time, and end with the same weights.

Trains a tiny recipe with a checkpoint after every step, in a fresh `ganforge train` process each time,
and SIGKILLs it at a random moment (anywhere from start-up to checkpoint writing) ``--kills`` times,
resuming after each kill. The run then finishes without interruption, and its final checkpoint
(``model.safetensors`` and ``state.safetensors``: networks, EMA, optimiser moments, data order, every
RNG) must be bit-identical to that of one uninterrupted run of the same length; ``metrics.jsonl`` must
hold each step exactly once. Not part of the timed test suite (a few minutes on a CPU).

    OMP_NUM_THREADS=1 GANFORGE_DATA=../shared/data .venv/bin/python benchmarks/soak.py --kills 20
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A tiny dcgan-cats: real images with deluxe + DiffAugment (RNG in the data path), an EMA generator
# (algorithm state) and learning-rate decay over the second half; checkpoints after every step.
SETTINGS = [
    "generator.width=8", "discriminator.width=8", "train.batch_size=4", "train.threads=1",
    "algorithm.ema=0.9", "train.lr_decay_start=0.5",
    "log.every=1", "log.checkpoint_every=1", "log.keep=2", "log.sample_every=25", "log.num_samples=4",
    "log.gif=false", "log.plots=false",
]


def ganforge(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganforge", *args]


def train_cmd(recipe: str, run: Path, steps: int, resume: bool) -> list[str]:
    sets = [x for s in SETTINGS for x in ("--set", s)]
    if resume:
        return ganforge("train", "--resume", str(run), "--no-progress", "--set", f"train.steps={steps}", *sets)
    return ganforge("train", "--recipe", recipe, "--steps", str(steps), "-o", str(run), "--no-progress", *sets)


def latest_step(run: Path) -> int:
    """The step of the checkpoint a resume would load (what `ganforge train --resume` reads)."""
    from ganforge.io.checkpoint import read_latest

    latest = read_latest(run / "checkpoints")
    return int(latest.name.split("-")[1]) if latest is not None else 0


def torn_checkpoints(run: Path) -> list[str]:
    """Checkpoint folders left half-written (the next checkpoint write removes them)."""
    folder = run / "checkpoints"
    return [p.name for p in folder.glob(".step-*")] if folder.is_dir() else []


def final_files(run: Path, steps: int) -> list[Path]:
    folder = run / "checkpoints" / f"step-{steps:08d}"
    return [folder / "model.safetensors", folder / "state.safetensors"]


def compare(a: Path, b: Path) -> list[str]:
    """Differences between two safetensors files: keys, dtypes, shapes, values and metadata."""
    import torch
    from safetensors import safe_open

    problems = []
    with safe_open(str(a), "pt") as fa, safe_open(str(b), "pt") as fb:
        if fa.metadata() != fb.metadata():
            keys = sorted(k for k in set(fa.metadata()) | set(fb.metadata()) if fa.metadata().get(k) != fb.metadata().get(k))
            problems.append(f"{a.name}: metadata differs in {keys}")
        ka, kb = set(fa.keys()), set(fb.keys())
        if ka != kb:
            problems.append(f"{a.name}: different tensors {sorted(ka ^ kb)[:5]}")
        for key in sorted(ka & kb):
            ta, tb = fa.get_tensor(key), fb.get_tensor(key)
            if ta.dtype != tb.dtype or ta.shape != tb.shape or not torch.equal(ta, tb):
                problems.append(f"{a.name}: {key} differs")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="dcgan-cats")
    parser.add_argument("--steps", type=int, default=1000, help="the run's length")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--steps-window", type=float, default=2.0,
                        help="most kills land up to this many seconds after the process's first new checkpoint")
    parser.add_argument("--startup-every", type=int, default=5,
                        help="every Nth kill lands early instead (0.2-4 s after the process starts: mostly during start-up)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ganforge-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    reference, soaked = work / "reference", work / "soaked"
    rng = random.Random(args.seed)
    t0 = time.perf_counter()

    print(f"reference: {args.steps} uninterrupted steps of {args.recipe} in {reference}", flush=True)
    done = subprocess.run(train_cmd(args.recipe, reference, args.steps, resume=False), env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return 1
    t_ref = time.perf_counter() - t0

    kills, takeovers, mid_write = [], 0, 0
    while len(kills) < args.kills:
        before = latest_step(soaked)
        if before >= args.steps:
            print(f"the run finished after {len(kills)} kills; raise --steps for more", file=sys.stderr)
            return 1
        in_startup = (len(kills) + 1) % args.startup_every == 0
        delay = rng.uniform(0.2, 4.0) if in_startup else rng.uniform(0.0, args.steps_window)
        cmd = train_cmd(args.recipe, soaked, args.steps, resume=before > 0)
        err_path = work / f"stderr-{len(kills) + 1:02d}.txt"
        torn_before = set(torn_checkpoints(soaked))
        with open(err_path, "w") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
            if not in_startup:  # the moment is counted from this process's first new checkpoint
                while proc.poll() is None and latest_step(soaked) <= before:
                    time.sleep(0.02)
            try:
                proc.wait(timeout=delay)
                finished = True
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                finished = False
            delay = time.perf_counter() - start
        text = err_path.read_text()
        takeovers += "took over the lock" in text
        if finished:
            if proc.returncode != 0 or latest_step(soaked) < args.steps:
                print(f"a start ended by itself (exit {proc.returncode}) before its kill:\n{text}", file=sys.stderr)
                return 1
            print("the run finished before the kill; raise --steps", file=sys.stderr)
            return 1
        after = latest_step(soaked)
        torn = set(torn_checkpoints(soaked)) - torn_before  # a checkpoint was being written when the kill came
        mid_write += bool(torn)
        kills.append((delay, before, after))
        where = "early" if in_startup else "while training"
        print(f"kill {len(kills):2d}: SIGKILL {delay:4.1f} s after start ({where}{', mid-checkpoint' if torn else ''}); "
              f"latest checkpoint step {before} -> {after}", flush=True)

    final = subprocess.run(train_cmd(args.recipe, soaked, args.steps, resume=latest_step(soaked) > 0), env=env,
                           capture_output=True, text=True)
    takeovers += "took over the lock" in final.stderr
    if final.returncode != 0:
        print(final.stderr, file=sys.stderr)
        return 1
    problems = []
    for a, b in zip(final_files(reference, args.steps), final_files(soaked, args.steps)):
        problems += compare(a, b)
    rows = [json.loads(line) for line in (soaked / "metrics.jsonl").read_text().splitlines() if line.strip()]
    if [r["step"] for r in rows] != list(range(1, args.steps + 1)):
        problems.append("metrics.jsonl does not hold each step exactly once")
    if (soaked / ".ganforge.lock").exists():
        problems.append("the lock file was left behind by the final run")
    during_startup = sum(1 for _, b, a in kills if a == b)
    total = time.perf_counter() - t0
    print(f"{len(kills)} SIGKILLs ({during_startup} before a new checkpoint was written, {mid_write} while one was "
          f"being written), {takeovers} stale locks "
          f"taken over; reference run {t_ref:.0f} s, everything {total:.0f} s; work folder {work}")
    if problems:
        print("FAIL:\n  " + "\n  ".join(problems[:20]))
        return 1
    print(f"PASS: final weights, optimiser, EMA, data order and RNG states of step {args.steps} are bit-identical "
          f"to the uninterrupted run; metrics.jsonl holds steps 1..{args.steps} once each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
