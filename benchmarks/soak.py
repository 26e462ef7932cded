"""Soak: does a run killed with SIGKILL at random moments, and resumed each time, end exactly where
an uninterrupted run ends?

Trains a tiny recipe with a checkpoint after every step, in a fresh `ganforge train` process each
time, and SIGKILLs it at a random moment (anywhere from start-up to checkpoint writing) ``--kills``
times, resuming after each kill. The run then finishes without interruption, and must match one
uninterrupted run of the same length:

- its final checkpoint (``model.safetensors`` and ``state.safetensors``: networks, EMA, optimiser
  moments, data order, every RNG) is bit-identical;
- ``metrics.jsonl`` holds each step exactly once, with the same logged values (losses, learning-rate
  factor, ...) at every step;
- no lock file is left behind.

Run from the repository root (a few minutes on a CPU at this size):

    OMP_NUM_THREADS=1 GANFORGE_DATA=../shared/data .venv/bin/python -m benchmarks.soak --kills 20

The same check runs in the test suite at a small size (tests/test_soak.py: the shapes recipe, two
kills, under a minute) through :func:`soak`.

Writes: one line per kill (when it landed, the checkpoint step before and after) and PASS or FAIL
with the differences on stdout; exit code 0 on PASS, 1 otherwise. The reference and the soaked run,
and each killed process's stderr, stay in ``--workdir`` (default: a new temporary folder).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from benchmarks import harness

# A tiny dcgan-cats: real images with deluxe + DiffAugment (RNG in the data path), an EMA generator
# (algorithm state) and learning-rate decay over the second half; checkpoints after every step.
SETTINGS = (
    "generator.width=8", "discriminator.width=8", "train.batch_size=4", "train.threads=1",
    "algorithm.ema=0.9", "train.lr_decay_start=0.5",
    "log.every=1", "log.checkpoint_every=1", "log.keep=2", "log.sample_every=25", "log.num_samples=4",
    "log.gif=false", "log.plots=false",
)
# A process that writes no new checkpoint for this long has hung: the soak stops instead of waiting.
STALL_S = 600
# Logged values that depend on the clock, not on the training: left out of the comparison.
CLOCK_KEYS = {"time", "images_per_s", "eval_seconds"}


class SoakError(Exception):
    """A training process failed by itself, or the run ended before all its kills: no verdict."""


@dataclass
class Kill:
    delay: float  # seconds from the process's start to the SIGKILL
    before: int  # the latest checkpoint's step when the process started
    after: int  # ... and after the kill
    early: bool  # aimed at start-up rather than at training
    mid_checkpoint: bool  # a checkpoint was being written when the kill came


@dataclass
class SoakResult:
    steps: int
    reference: Path
    soaked: Path
    kills: list[Kill] = field(default_factory=list)
    takeovers: int = 0  # stale locks (of killed processes) taken over by the next process
    problems: list[str] = field(default_factory=list)  # empty: bit-identical to the uninterrupted run
    reference_s: float = 0.0
    total_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


def train_cmd(recipe: str, run: Path, steps: int, resume: bool, settings: Sequence[str] = SETTINGS) -> list[str]:
    sets = [x for s in settings for x in ("--set", s)]
    if resume:
        return harness.ganforge("train", "--resume", str(run), "--no-progress", "--set", f"train.steps={steps}", *sets)
    return harness.ganforge("train", "--recipe", recipe, "--steps", str(steps), "-o", str(run), "--no-progress", *sets)


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


def compare_tensors(a: Path, b: Path) -> list[str]:
    """Differences between two safetensors files: keys, dtypes, shapes, values and metadata."""
    import torch
    from safetensors import safe_open

    if not a.is_file() or not b.is_file():
        return [f"{a.name}: missing in {a.parent if not a.is_file() else b.parent}"]
    problems = []
    with safe_open(str(a), "pt") as fa, safe_open(str(b), "pt") as fb:
        ma, mb = fa.metadata() or {}, fb.metadata() or {}
        if ma != mb:
            keys = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
            problems.append(f"{a.name}: metadata differs in {keys}")
        ka, kb = set(fa.keys()), set(fb.keys())
        if ka != kb:
            problems.append(f"{a.name}: different tensors {sorted(ka ^ kb)[:5]}")
        for key in sorted(ka & kb):
            ta, tb = fa.get_tensor(key), fb.get_tensor(key)
            if ta.dtype != tb.dtype or ta.shape != tb.shape or not torch.equal(ta, tb):
                problems.append(f"{a.name}: {key} differs")
    return problems


def compare_metrics(reference: Path, soaked: Path, steps: int) -> list[str]:
    """The soaked run's log holds steps 1..steps once each, with the uninterrupted run's values."""
    ref_rows, rows = harness.read_metrics(reference), harness.read_metrics(soaked)
    problems = []
    if [r["step"] for r in rows] != list(range(1, steps + 1)):
        problems.append("metrics.jsonl does not hold each step exactly once")
    expected = {r["step"]: {k: v for k, v in r.items() if k not in CLOCK_KEYS} for r in ref_rows}
    differ = [r["step"] for r in rows if {k: v for k, v in r.items() if k not in CLOCK_KEYS} != expected.get(r["step"])]
    if differ:
        problems.append(f"metrics.jsonl's logged values differ from the uninterrupted run's at steps {differ[:10]}")
    return problems


def _run_to_end(cmd: list[str], env: dict) -> str:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=STALL_S * 10)
    except subprocess.TimeoutExpired as exc:
        raise SoakError(f"`{' '.join(cmd[2:4])} ...` did not finish in {STALL_S * 10} s") from exc
    if done.returncode != 0:
        raise SoakError(f"`{' '.join(cmd[2:4])} ...` failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stderr


def soak(recipe: str = "dcgan-cats", steps: int = 1000, kills: int = 20, *, work: Path, seed: int = 0,
         settings: Sequence[str] = SETTINGS, steps_window: float = 2.0, startup_every: int = 5,
         startup_window: tuple[float, float] = (0.2, 4.0), env: dict | None = None,
         log: Callable[[str], None] = print) -> SoakResult:
    """Train ``recipe`` for ``steps`` uninterrupted into ``work/reference``, then into ``work/soaked``
    with ``kills`` SIGKILLs and resumes, and compare the two. Most kills land up to ``steps_window``
    seconds after a process's first new checkpoint; every ``startup_every``-th lands
    ``startup_window`` seconds after the process starts (mostly during start-up). The moments come
    from ``seed``. Raises :class:`SoakError` when a process fails by itself or the run finishes
    before its kills."""
    env = dict(os.environ if env is None else env)
    env.setdefault("OMP_NUM_THREADS", "1")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    reference, soaked = work / "reference", work / "soaked"
    result = SoakResult(steps, reference, soaked)
    rng = random.Random(seed)
    t0 = time.perf_counter()

    log(f"reference: {steps} uninterrupted steps of {recipe} in {reference}")
    _run_to_end(train_cmd(recipe, reference, steps, resume=False, settings=settings), env)
    result.reference_s = time.perf_counter() - t0

    while len(result.kills) < kills:
        before = latest_step(soaked)
        if before >= steps:
            raise SoakError(f"the run finished after {len(result.kills)} kills; raise --steps for more")
        early = startup_every > 0 and (len(result.kills) + 1) % startup_every == 0
        delay = rng.uniform(*startup_window) if early else rng.uniform(0.0, steps_window)
        cmd = train_cmd(recipe, soaked, steps, resume=before > 0, settings=settings)
        err_path = work / f"stderr-{len(result.kills) + 1:02d}.txt"
        torn_before = set(torn_checkpoints(soaked))
        with open(err_path, "w") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
            if not early:  # the moment is counted from this process's first new checkpoint
                while proc.poll() is None and latest_step(soaked) <= before:
                    if time.perf_counter() - start > STALL_S:
                        proc.kill()
                        proc.wait()
                        raise SoakError(f"no new checkpoint {STALL_S} s after a start; see {err_path}")
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
        result.takeovers += "took over the lock" in text
        if finished:
            if proc.returncode != 0 or latest_step(soaked) < steps:
                raise SoakError(f"a start ended by itself (exit {proc.returncode}) before its kill:\n{text[-3000:]}")
            raise SoakError("the run finished before the kill; raise --steps")
        after = latest_step(soaked)
        torn = bool(set(torn_checkpoints(soaked)) - torn_before)  # a checkpoint was being written when the kill came
        result.kills.append(Kill(delay, before, after, early, torn))
        where = "early" if early else "while training"
        log(f"kill {len(result.kills):2d}: SIGKILL {delay:4.1f} s after start ({where}{', mid-checkpoint' if torn else ''}); "
            f"latest checkpoint step {before} -> {after}")

    final_stderr = _run_to_end(train_cmd(recipe, soaked, steps, resume=latest_step(soaked) > 0, settings=settings), env)
    result.takeovers += "took over the lock" in final_stderr
    for a, b in zip(final_files(reference, steps), final_files(soaked, steps)):
        result.problems += compare_tensors(a, b)
    result.problems += compare_metrics(reference, soaked, steps)
    if (soaked / ".ganforge.lock").exists():
        result.problems.append("the lock file was left behind by the final run")
    result.total_s = time.perf_counter() - t0
    return result


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="dcgan-cats")
    parser.add_argument("--steps", type=int, default=1000, help="the run's length")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--steps-window", type=float, default=2.0,
                        help="most kills land up to this many seconds after the process's first new checkpoint")
    parser.add_argument("--startup-every", type=int, default=5,
                        help="every Nth kill lands early instead (0.2-4 s after the process starts: mostly during start-up)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        help="one more recipe override for both runs (KEY=VALUE; after the soak's own tiny settings)")
    args = parser.parse_args(argv)
    for key in ("steps", "kills"):
        if getattr(args, key) < 1:
            parser.error(f"--{key} must be at least 1, got {getattr(args, key)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ganforge-soak-"))
    try:
        result = soak(args.recipe, args.steps, args.kills, work=work, seed=args.seed, settings=[*SETTINGS, *args.extra],
                      steps_window=args.steps_window, startup_every=args.startup_every,
                      log=lambda line: print(line, flush=True))
    except SoakError as exc:
        print(exc, file=sys.stderr)
        return 1
    kills = result.kills
    during_startup = sum(1 for k in kills if k.after == k.before)
    mid_write = sum(k.mid_checkpoint for k in kills)
    print(f"{len(kills)} SIGKILLs ({during_startup} before a new checkpoint was written, {mid_write} while one was "
          f"being written), {result.takeovers} stale locks "
          f"taken over; reference run {result.reference_s:.0f} s, everything {result.total_s:.0f} s; work folder {work}")
    if result.problems:
        print("FAIL:\n  " + "\n  ".join(result.problems[:20]))
        return 1
    print(f"PASS: final weights, optimiser, EMA, data order and RNG states of step {args.steps} are bit-identical "
          f"to the uninterrupted run; metrics.jsonl holds steps 1..{args.steps} once each, with the same values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
