"""Sharing a machine: what speed does each of two training runs on one machine get, beside each
other and alone, with ganforge's CPU sharing on (the default) and off (GANFORGE_CPU_SHARE=off:
every run uses every core)?

Each configuration trains `dcgan-cats` (no scoring, no progress bar, no grids or checkpoints in the
timed part) for a fixed wall time, then stops it with SIGINT (a clean checkpoint-and-stop) and reads
each run's images/s from its metrics.jsonl (median over the log windows after the first `--settle`
seconds). Configurations: solo_on, solo_off (one run), pair_on, pair_off (two runs started together).

Run from the repository root:

    GANFORGE_DATA=../shared/data .venv/bin/python -m benchmarks.share --seconds 90 --rounds 2
    GANFORGE_DATA=../shared/data .venv/bin/python -m benchmarks.share --seconds 60 --settle 15 --rounds 1 \\
        --configs solo_on,pair_on --output share.json

Writes: each round's images/s, then a JSON summary on stdout (medians, each pair's share of the solo
speed, solo on against off, every run's speed, the CPU, the runs' notes about threads); with
`--output FILE` the same JSON into that file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import harness

CONFIGS = {"solo_on": (1, True), "solo_off": (1, False), "pair_on": (2, True), "pair_off": (2, False)}


def start(run_dir: Path, share: bool) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["GANFORGE_CPU_SHARE"] = "on" if share else "off"
    cmd = harness.ganforge("train", "--recipe", "dcgan-cats", "--steps", "1000000", "--set", "eval.every=0",
                           "--set", "log.gif=false", "--set", "log.sample_every=100000", "--set", "log.checkpoint_every=100000",
                           "--no-progress", "-o", str(run_dir))
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def speed(run_dir: Path, settle: float) -> float:
    rate = harness.logged_speed(harness.read_metrics(run_dir), after=settle)
    if rate is None:
        raise SystemExit(f"{run_dir}: no log windows after {settle} s; run longer (--seconds)")
    return rate


def trial(n: int, share: bool, seconds: float, settle: float, root: Path) -> tuple[list[float], list[str]]:
    dirs = [root / f"{'on' if share else 'off'}-{n}-{i}-{time.monotonic_ns()}" for i in range(n)]
    procs = [start(d, share) for d in dirs]
    time.sleep(seconds)
    for p in procs:
        p.send_signal(signal.SIGINT)
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    return [speed(d, settle) for d in dirs], outputs


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.share", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=90, help="wall time of each configuration")
    p.add_argument("--settle", type=float, default=20, help="start-up seconds left out of the speed")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--configs", default="solo_on,solo_off,pair_on,pair_off",
                   help="which of solo_on, solo_off, pair_on, pair_off to run (comma-separated)")
    p.add_argument("--output", type=Path)
    args = p.parse_args(argv)
    args.chosen = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in args.chosen if c not in CONFIGS]
    if unknown or not args.chosen:
        p.error(f"--configs takes {', '.join(CONFIGS)}; got {args.configs!r}")
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.seconds <= args.settle:
        p.error(f"--seconds ({args.seconds:g}) must be longer than --settle ({args.settle:g})")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    results: dict[str, list] = {c: [] for c in args.chosen}
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for key in args.chosen:
                n, share = CONFIGS[key]
                speeds, outputs = trial(n, share, args.seconds, args.settle, Path(tmp))
                results[key].append(speeds)
                print(f"round {r + 1} {key}: " + ", ".join(f"{s:.1f}" for s in speeds) + " img/s", flush=True)
                notes += [line for out in outputs for line in out.splitlines() if "threads" in line][:4]
    med = {k: statistics.median(x for round_ in v for x in round_) for k, v in results.items()}
    summary = {"images_per_s_median": {k: round(v, 1) for k, v in med.items()}}
    for pair, solo in (("pair_on", "solo_on"), ("pair_off", "solo_off")):
        if pair in med and solo in med:
            summary[f"{pair}_share_of_solo"] = round(med[pair] / med[solo], 3)
    if "solo_on" in med and "solo_off" in med:
        summary["solo_on_vs_off"] = round(med["solo_on"] / med["solo_off"] - 1, 4)
    summary.update({"runs": results, "cpu_count": os.cpu_count(), "cpu": harness.cpu_description(),
                    "seconds": args.seconds, "notes": notes[:6]})
    print(json.dumps(summary, indent=2))
    if args.output:
        harness.write_json(args.output, summary, indent=2)


if __name__ == "__main__":
    main()
