"""The training loop every algorithm uses.

:func:`train` prepares a run (lock, output folder, networks, resume), then runs steps: set the
learning rates, call the algorithm's ``train_step``, and hand the logged scalars to the callbacks
(:mod:`ganforge.train.callbacks`), which do everything else: NaN rollback, CPU share, metrics and
grids, checkpoints and scores, stopping on a signal.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
from pathlib import Path
from typing import Any, Sequence


from ganforge.core.errors import CheckpointError, PluginCodeError, TrainingError
from ganforge.core.recipes import Recipe
from ganforge.core.registry import Registry
from ganforge.io.checkpoint import CHECKPOINTS, read_latest
from ganforge.io.runfiles import RECIPE_FILE
from ganforge.io.state import restore_training_state
from ganforge.train import runlock
from ganforge.train.callbacks import (
    Callback,
    Checkpoints,
    FollowCpuShare,
    NanGuard,
    Progress,
    StopOnSignal,
    truncate_metrics,
)
from ganforge.train.model_card import ModelCard
from ganforge.train.session import TrainRun


def train(
    recipe: Recipe,
    registry: Registry,
    run_dir: Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    console=None,
    progress: bool = True,
    log_with: list[str] | None = None,
    callbacks: Sequence[Callback] = (),
) -> Path:
    """Train ``recipe`` in ``run_dir`` (resuming from its latest checkpoint if ``resume``) and
    return the run folder. ``stop_at`` ends this call early at that step (a later ``resume``
    continues); ``log_with`` names Accelerate trackers (see ``ganforge.train.trackers``);
    ``callbacks`` run after the built-in ones at every step."""
    from ganforge.train.report import Reporter

    run = TrainRun(recipe, registry, run_dir, log_with)
    say = Reporter(run, console, progress)
    try:
        _prepare(run, resume, say)
        end = min(recipe.train.steps, stop_at) if stop_at else recipe.train.steps
        with _Signals() as signals:
            steps = [NanGuard(say), FollowCpuShare(say), Progress(say), Checkpoints(say, end), StopOnSignal(signals),
                     ModelCard(say), *_algorithm_callbacks(run), *callbacks]
            for cb in steps:
                cb.on_train_start(run)
            first = run.step
            while run.step < end:
                logs = _one_step(run, check=run.step == first)
                if not all([cb.keep_step(run, logs) for cb in steps]):
                    continue  # discarded (rolled back): the step runs again
                run.algorithm_call("after_step")
                run.step += 1
                for cb in steps:
                    cb.on_step_end(run, logs)
            for cb in steps:
                cb.on_train_end(run, finished=run.step >= recipe.train.steps)
        say.finish(final=run.step >= recipe.train.steps)
        # Leave together: a process that tears its process group down while another still talks
        # to it can abort at exit (seen with gloo on CPU).
        run.accelerator.wait_for_everyone()
        return run.run_dir
    finally:
        _close(run, say)


def _algorithm_callbacks(run: TrainRun) -> list[Callback]:
    """The callbacks an algorithm adds (``Algorithm.callbacks(run)``), if it defines any."""
    if not callable(getattr(run.algorithm, "callbacks", None)):
        return []
    return list(run.algorithm_call("callbacks") or [])


def _one_step(run: TrainRun, check: bool) -> dict[str, float]:
    """Set the learning rates, run the algorithm's step, return what it logs plus the parts' values."""
    run.lr.apply(run.optimizers, run.step)
    handles = run.check_outputs_once() if check else []  # the first step checks every network's output
    try:
        logs = run.algorithm_call("train_step", run.next_batch())
    finally:
        for handle in handles:
            handle.remove()
    try:
        logs = {str(k): float(v) for k, v in dict(logs or {}).items()}
    except (TypeError, ValueError) as exc:
        raise PluginCodeError(
            f"{run.algorithm_component.label}: train_step must return a dict of scalars to log, got {logs!r:.80}"
        ) from exc
    return {**logs, **run.part_logs()}


def _prepare(run: TrainRun, resume: bool, say) -> None:
    """Lock the run folder, check it, build the run, restore it when resuming, and say what runs."""
    runlock.acquire(run, resume=resume, notice=say.line)  # one owner per run folder, before any write
    latest = read_latest(run.run_dir / CHECKPOINTS)
    if not resume and latest is not None:
        raise TrainingError(
            f"{run.run_dir} already holds a run with checkpoints",
            hint=f"continue it with `ganforge train --resume {run.run_dir}`, or choose another --output-dir",
        )
    if run.is_main:
        check_output_dir(run.run_dir, need_bytes=64 * 2**20)
    run.accelerator.wait_for_everyone()
    run.build()
    if resume:
        if latest is None:
            raise CheckpointError(f"nothing to resume in {run.run_dir}: it has no checkpoint yet")
        restore_training_state(run, latest)
        run.last_saved = run.step
    elif run.is_main:
        (run.run_dir / RECIPE_FILE).write_text(run.recipe.to_toml(), encoding="utf-8")
    truncate_metrics(run)
    say.start()
    for line in _start_notes(run, latest if resume else None):
        say.line(line)


def _start_notes(run: TrainRun, resumed_from: Path | None) -> list[str]:
    notes = [run.cpu_note] if run.cpu_note else []
    if run.is_main and run.device.type == "cpu" and run.accelerator.mixed_precision == "bf16":
        from ganforge.train.hardware import bf16_warning

        notes.append(bf16_warning())  # emulated bf16 is many times slower than fp32: say so, measured
    if run.is_main and run.precision_note:
        notes.append(run.precision_note)
    if resumed_from is not None:
        notes.append(f"resumed from {resumed_from} at step {run.step}")
        if run.resumed_precision is not None:
            names = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}
            notes.append(
                f"this run trained in {names.get(run.resumed_precision, run.resumed_precision)} until step {run.step} "
                f"and continues in {names[run.precision]} (train.mixed_precision = \"{run.recipe.train.mixed_precision}\" "
                "on this machine): it will not repeat the earlier numbers exactly")
    return [n for n in notes if n]


def _close(run: TrainRun, say) -> None:
    runlock.release(run)
    run.cpu.close()
    say.stop()
    # Drop the DDP wrappers (they hold the process group) before the group goes away, so no
    # communication thread outlives it; end_training() then destroys the group.
    run.nets, run.optimizers = {}, {}
    run.accelerator.free_memory()
    gc.collect()
    try:
        run.accelerator.end_training()
    except Exception:  # noqa: BLE001 - nothing to report if trackers were never started
        pass
    forget_accelerator_state(run.world > 1)


def forget_accelerator_state(distributed: bool) -> None:
    """Accelerate keeps one process-wide state; clear it so a later train() in the same process
    (a notebook, a benchmark, tests) can choose another mixed precision."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=distributed)
    GradientState._reset_state()



def check_output_dir(run_dir: Path, need_bytes: int) -> None:
    """Fail before training when the run directory cannot be written or the disk is nearly full."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise TrainingError(
            f"cannot write to the output directory {run_dir}: {exc.strerror or exc}",
            hint="choose a writable place with --output-dir",
        ) from None
    free = shutil.disk_usage(run_dir).free
    if free < need_bytes:
        raise TrainingError(
            f"only {free / 2**20:.0f} MiB free at {run_dir}, and this run needs about {need_bytes / 2**20:.0f} MiB "
            "for its checkpoints",
            hint="free some space, choose another --output-dir, or lower log.keep",
        )


class _Signals:
    """First Ctrl-C / SIGTERM asks the loop to checkpoint and stop; a second Ctrl-C exits at once."""

    def __init__(self):
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            # Files are only ever renamed into place, so leaving now cannot corrupt a checkpoint.
            os._exit(130)
        self.received = signum

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
