"""Work done around each training step, as callbacks.

The loop (:func:`ganforge.train.train`) only runs steps; everything else happens in callbacks, in
this order: :class:`NanGuard` (may discard a step), :class:`FollowCpuShare`, :class:`Progress`
(metrics log, progress bar, sample grids), :class:`Checkpoints` (checkpoint cadence and scores),
:class:`StopOnSignal` (Ctrl-C / SIGTERM), :class:`~ganforge.train.model_card.ModelCard` (the run's
``MODEL_CARD.md`` when training ends). An algorithm adds its own through
``Algorithm.callbacks(run)``, a script through ``train(..., callbacks=[...])``; they run after the
built-in ones.

Callbacks receive the trainer's :class:`~ganforge.train.session.TrainRun` (``run.step`` is the
number of steps done; ``run.api`` is the :class:`~ganforge.train.run.Run` algorithms see).
"""

from __future__ import annotations

import math
import signal
from typing import TYPE_CHECKING

import torch

from ganforge.core.errors import TrainingError, TrainingInterrupted
from ganforge.io.checkpoint import CHECKPOINTS, read_latest
from ganforge.io.runfiles import METRICS_FILE
from ganforge.io.state import restore_training_state, save_training_state

if TYPE_CHECKING:
    from ganforge.train.report import Reporter
    from ganforge.train.session import TrainRun


class Callback:
    """Override the methods you need; each gets the run, the last three the step's logged scalars."""

    def on_train_start(self, run: "TrainRun") -> None:
        """Once, after the networks are built (and restored, when resuming), before the first step."""

    def keep_step(self, run: "TrainRun", logs: dict[str, float]) -> bool:
        """Right after ``train_step``, before ``after_step`` and before the step counts. Return False
        to discard the step (the loop then runs the step number again)."""
        return True

    def on_step_end(self, run: "TrainRun", logs: dict[str, float]) -> None:
        """After the step counted (``run.step`` is its 1-based number)."""

    def on_train_end(self, run: "TrainRun", finished: bool) -> None:
        """After the last step of this call (``finished``: the recipe's step count was reached)."""


def agree(run: "TrainRun", mine: bool) -> bool:
    """True when any process says so. Processes must take the same branch (stop, roll back), or
    one would wait for the others forever."""
    if run.world == 1:
        return mine
    flag = torch.tensor([1.0 if mine else 0.0], device=run.device)
    return bool(run.accelerator.reduce(flag, reduction="sum").item() > 0)


def truncate_metrics(run: "TrainRun") -> None:
    """Forget metric lines logged after ``run.step`` (after a resume or rollback they are logged again)."""
    path = run.run_dir / METRICS_FILE
    if not run.is_main or not path.exists():
        return
    import json

    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= run.step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    path.write_text("".join(l + "\n" for l in kept), encoding="utf-8")


class NanGuard(Callback):
    """A non-finite logged value stops training with the last good checkpoint kept, or, with
    ``train.on_nan = "rollback"``, reloads that checkpoint and scales the learning rates down."""

    MAX_ROLLBACKS = 5

    def __init__(self, say: "Reporter"):
        self.say = say

    def keep_step(self, run, logs):
        bad = next((k for k, v in logs.items() if not math.isfinite(v)), None)
        if run.world > 1 and agree(run, bad is not None) and bad is None:
            bad = "the loss of another process"
            logs[bad] = float("nan")
        if bad is None:
            return True
        train = run.recipe.train
        if train.on_nan == "rollback" and run.last_saved > 0 and run.rollbacks < self.MAX_ROLLBACKS:
            # The checkpoint holds the scale and count from before the divergence: carry the
            # current ones over, or the same rollback would repeat forever at the same rate.
            scale, rollbacks, failed_step = run.lr.scale, run.rollbacks, run.step + 1
            restore_training_state(run, read_latest(run.run_dir / CHECKPOINTS))
            run.lr.scale = scale * train.rollback_lr_factor
            run.rollbacks = rollbacks + 1
            truncate_metrics(run)
            self.say.line(f"non-finite {bad} at step {failed_step}: rolled back to step {run.step} and "
                          f"scaled learning rates by {run.lr.scale:g}")
            return False
        kept = (f"the last good checkpoint (step {run.last_saved}) is kept in {run.run_dir / CHECKPOINTS}"
                if run.last_saved > 0 else "no checkpoint had been written yet")
        raise TrainingError(
            f"training diverged: {bad} became {logs[bad]} at step {run.step + 1}; {kept}",
            hint="lower the learning rates (--set optim.<group>.lr=...), use --mixed-precision no, "
            + ("or pass --set train.on_nan=rollback" if train.on_nan != "rollback"
               else f"and resume ({run.rollbacks} rollback(s) were tried)"),
        )


class FollowCpuShare(Callback):
    """When another training run on this machine starts or ends, take the new share of the cores."""

    def __init__(self, say: "Reporter"):
        self.say = say

    def on_step_end(self, run, logs):
        note = run.cpu.poll()
        if note:
            torch.set_num_threads(run.cpu.threads)
            run.threads = run.cpu.threads
            self.say.line(note)


class Progress(Callback):
    """The metrics log and progress bar every ``log.every`` steps, a sample grid every ``log.sample_every``."""

    def __init__(self, say: "Reporter"):
        self.say = say
        self.fixed = None

    def on_train_start(self, run):
        if run.is_main:
            self.fixed = run.algorithm_call("progress_inputs", run.recipe.log.num_samples)

    def on_step_end(self, run, logs):
        self.say.step(logs)
        if run.is_main and (run.step % run.recipe.log.sample_every == 0 or run.step == run.recipe.train.steps):
            self.say.grid(self.fixed)


class Checkpoints(Callback):
    """A checkpoint every ``log.checkpoint_every`` steps, at the last step, and at every scored step
    (``checkpoints/best`` must point at one); scores during training come right after."""

    def __init__(self, say: "Reporter", end: int):
        self.say, self.end, self.scorer = say, end, None

    def on_train_start(self, run):
        from ganforge.eval.evaluator import TrainingEvaluator

        self.scorer = TrainingEvaluator.create(run, self.say.line)  # None unless [eval] every > 0

    def on_step_end(self, run, logs):
        scored = self.scorer is not None and self.scorer.due(run)
        if run.step % run.recipe.log.checkpoint_every == 0 or run.step == self.end or scored:
            save_training_state(run)
            run.last_saved = run.step
            if self.scorer is not None:
                scores = self.scorer.after_checkpoint(run, self.say)
                if scores:
                    from ganforge.train import trackers

                    trackers.log(run, {"step": run.step, **{f"eval/{k}": v for k, v in scores.items()}})


class StopOnSignal(Callback):
    """The first Ctrl-C or SIGTERM stops training after the current step, with a checkpoint."""

    def __init__(self, signals):
        self.signals = signals

    def on_step_end(self, run, logs):
        if not agree(run, self.signals.received is not None):
            return
        if run.last_saved != run.step:
            save_training_state(run)
        error = TrainingInterrupted(
            f"interrupted at step {run.step}; checkpoint saved in {run.run_dir / CHECKPOINTS}",
            hint=f"resume with: ganforge train --resume {run.run_dir}",
        )
        error.exit_code = 143 if self.signals.received == signal.SIGTERM else 130
        raise error
