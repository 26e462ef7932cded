"""What every benchmark shares: timed steps, interleaved rounds, the trainer's own speed, training
processes stopped after a wall time, metrics logs, the CPU's description and JSON results.

Not a harness itself; the harnesses (``python -m benchmarks.speed``, ``.fewshot``, ``.share``,
``.bf16``, ``.soak``) import it. It imports only the standard library at the top (torch and
ganforge where a function needs them), so a harness's start-up is its own.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]
# The trainer's timed steps write no grid, checkpoint or score (they cost what they cost in any loop).
QUIET_LOG = ("eval.every=0", "log.gif=false", "log.plots=false", "log.sample_every=1000000",
             "log.checkpoint_every=1000000")
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


# --------------------------------------------------------------------------- processes


def ganforge(*args: str) -> list[str]:
    """The command line of ``ganforge ARGS`` with this interpreter."""
    return [sys.executable, "-m", "ganforge", *map(str, args)]


def harness_command(name: str, *args: str) -> list[str]:
    """The command line of ``python -m benchmarks.NAME ARGS`` (run it with :func:`child_env`)."""
    return [sys.executable, "-m", f"benchmarks.{name}", *map(str, args)]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment, with the repository on PYTHONPATH (so a child can run
    ``-m benchmarks.NAME`` from any folder) and ``extra`` on top."""
    env = dict(os.environ)
    paths = [str(REPO), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_for(cmd: Sequence[str], seconds: float, sig: int = signal.SIGTERM, **popen) -> tuple[int, float]:
    """Run ``cmd`` for at most ``seconds`` of wall time, then stop it with ``sig`` (the trainer
    checkpoints and exits on SIGINT and SIGTERM). Returns its exit code and wall seconds."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(cmd), **popen)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
        proc.wait(timeout=300)
    return proc.returncode, time.monotonic() - t0


def wall_time(cmd: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Seconds the whole command takes, start-up included; stops the benchmark if it fails."""
    t0 = time.perf_counter()
    done = subprocess.run(list(cmd), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return wall


# --------------------------------------------------------------------------- timing


def timed_rate(step: Callable[[], int], steps: int, warmup: int = 0) -> float:
    """Images/s of ``steps`` calls of ``step`` (each returns how many images it trained on), after
    ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    images = sum(step() for _ in range(steps))
    return images / (time.perf_counter() - t0)


def interleaved_rounds(measures: dict[str, Callable[[], float]], rounds: int, alternate: bool = False,
                       report: Callable[[int, dict[str, list[float]]], None] | None = None) -> dict[str, list[float]]:
    """Each measure once per round, round after round, so that the machine's drift hits them alike;
    ``alternate`` reverses the order every other round. ``report(round, results)`` after each round."""
    results: dict[str, list[float]] = {name: [] for name in measures}
    for r in range(rounds):
        order = list(measures) if not alternate or r % 2 == 0 else list(reversed(measures))
        for name in order:
            results[name].append(measures[name]())
        if report is not None:
            report(r, results)
    return results


def medians(results: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in results.items()}


# --------------------------------------------------------------------------- the trainer


def quiet_console():
    """A rich console that prints nowhere (the trainer's own lines)."""
    from rich.console import Console

    return Console(file=open(os.devnull, "w"))


def quiet_sets(steps: int, log_every: int) -> list[str]:
    """Overrides for a timed trainer run of ``steps`` steps, logging every ``log_every``."""
    return [*QUIET_LOG, f"train.steps={steps}", f"log.every={log_every}"]


def train_quietly(recipe_name: str, sets: Sequence[str], run_dir: Path) -> None:
    """``ganforge train`` in this process (the same call as the command), printing nothing."""
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe
    from ganforge.train.loop import train

    registry = get_registry()
    train(load_recipe(recipe_name, registry, list(sets)), registry, Path(run_dir), progress=False, console=quiet_console())


def trainer_rate(recipe_name: str, sets: Sequence[str], steps: int, warmup: int, threads: int | None = None) -> float:
    """Images/s of the real trainer between step ``warmup`` and step ``warmup + steps``, from its
    own metrics log (so start-up and the end's checkpoint are left out)."""
    import tempfile

    import torch

    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe

    sets = [*sets, *quiet_sets(warmup + steps, math.gcd(warmup, steps))]
    batch = load_recipe(recipe_name, get_registry(), sets).train.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        train_quietly(recipe_name, sets, Path(tmp) / "run")
        times = {r["step"]: r["time"] for r in read_metrics(Path(tmp) / "run") if "time" in r}
    if threads:
        torch.set_num_threads(threads)  # the trainer sets its own
    return steps * batch / (times[warmup + steps] - times.get(warmup, 0.0))


def read_metrics(run: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl (a line cut short by a kill is skipped)."""
    rows = []
    for line in (Path(run) / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def logged_speed(rows: Iterable[dict], after: float = 0.0) -> float | None:
    """Median images/s of the trainer's log windows that end at or after ``after`` seconds."""
    rates = [r["images_per_s"] for r in rows if "images_per_s" in r and r.get("time", 0) >= after]
    return statistics.median(rates) if rates else None


# --------------------------------------------------------------------------- the machine and results


def cpu_description() -> dict:
    """The machine: architecture, cores, CPU model and its bf16-relevant flags (``lscpu``; on
    systems without it, /proc/cpuinfo; elsewhere only what the platform says)."""
    info: dict = {"machine": platform.machine(), "cores": os.cpu_count()}
    fields = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
    except (OSError, subprocess.CalledProcessError):
        try:
            text = Path("/proc/cpuinfo").read_text()
            pairs = [line.partition(":") for line in text.splitlines()]
            first = {}
            for k, _, v in pairs:
                first.setdefault(k.strip(), v.strip())
            fields = {"Model name": first.get("model name", ""), "Flags": first.get("flags", "")}
        except OSError:
            pass
    if fields.get("Model name"):
        info["model"] = fields["Model name"]
    elif platform.processor():
        info["model"] = platform.processor()
    if "Flags" in fields:
        flags = fields["Flags"].split()
        info.update({flag: flag in flags for flag in CPU_FLAGS})
    return info


def cpu_summary(info: dict | None = None) -> str:
    """One line: the CPU model and which of avx2 / avx512f / avx512_bf16 / amx_bf16 it has."""
    info = info or cpu_description()
    name = info.get("model") or info.get("machine") or "?"
    return f"{name} ({', '.join(f for f in CPU_FLAGS if info.get(f))})"


def run_meta(**extra) -> dict:
    """When, where and with what a measurement ran: date (UTC), torch version, CPU, and ``extra``."""
    import torch

    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "torch": torch.__version__,
            "cpu": cpu_summary(), **extra}


def write_json(path: Path, data, indent: int = 1) -> Path:
    """Write ``data`` to ``path`` whole or not at all (a kill mid-write keeps the previous file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=indent), encoding="utf-8")
    os.replace(tmp, path)
    return path


def env_threads(default: int = 2) -> int:
    """Threads to use: $OMP_NUM_THREADS when set, else ``default``."""
    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or default


def data_root() -> Path:
    """$GANFORGE_DATA, when it holds grumpify-cats/{grumpy,russian_blue}."""
    root = os.environ.get("GANFORGE_DATA")
    if not root or not (Path(root) / "grumpify-cats" / "grumpy").is_dir():
        raise SystemExit("set GANFORGE_DATA to the folder holding grumpify-cats/{grumpy,russian_blue}")
    return Path(root)
