"""The learning rates of a run, owned in one place.

A recipe gives each optimiser group a base rate (``[optim.GROUP] lr``) and a schedule; the optimiser
plugin only creates the torch optimiser. From then on :class:`LearningRates` alone sets every param
group's ``lr`` before each step::

    lr(group, step) = base_lr[group] * schedule[group].factor(step, total_steps) * scale

``step`` counts from 0: the first update uses ``factor(0, total)``, the last ``factor(total - 1,
total)``. ``scale`` starts at 1 and shrinks by ``train.rollback_lr_factor`` at every NaN rollback; it
is saved in the training checkpoint. The logged ``lr_factor`` is ``factor * scale`` of the first
group the algorithm declares in ``optimizers`` (the generator's, for every built-in algorithm); the
other groups follow their own schedules and are not logged.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch


class LearningRates:
    def __init__(self, base_lr: Mapping[str, float], schedules: Mapping[str, Any], total_steps: int):
        self.base_lr = dict(base_lr)
        self.schedules = dict(schedules)
        self.total_steps = total_steps
        self.scale = 1.0

    def factors(self, step: int) -> dict[str, float]:
        """Each group's schedule factor for the update ``step`` (0-based), before ``scale``."""
        return {group: float(s.factor(step, self.total_steps)) for group, s in self.schedules.items()}

    def rates(self, step: int) -> dict[str, float]:
        return {group: self.base_lr[group] * f * self.scale for group, f in self.factors(step).items()}

    def apply(self, optimizers: Mapping[str, torch.optim.Optimizer], step: int) -> None:
        """Set every param group's rate for the update ``step``."""
        for group, rate in self.rates(step).items():
            for pg in optimizers[group].param_groups:
                pg["lr"] = rate

    def log_values(self, step: int) -> dict[str, float]:
        """What the metrics log records for the update ``step``."""
        first = next(iter(self.factors(step).values()), 1.0)
        return {"lr_factor": round(first * self.scale, 6)}
