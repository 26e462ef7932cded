"""Learning-rate schedules: pure functions of the step (so a resumed run continues exactly).

Each multiplies its group's base rate by ``factor(step, total)``. ``warmup`` (steps) ramps the
factor linearly from 1/warmup up to the schedule's value first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ganforge import Schedule


def _check_common(warmup: int, start: float | None = None, floor: float | None = None) -> None:
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or a positive number of steps, got {warmup}")
    if start is not None and not 0.0 <= start <= 1.0:
        raise ValueError(f"start must be a fraction of training in [0, 1], got {start}")
    if floor is not None and not 0.0 <= floor <= 1.0:
        raise ValueError(f"the final factor must be in [0, 1], got {floor}")


def _warm(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


@dataclass(frozen=True)
class ConstantConfig:
    warmup: int = 0

    def __post_init__(self):
        _check_common(self.warmup)


@dataclass(frozen=True)
class LinearConfig:
    start: float = 0.5  # fraction of training after which the rate decays linearly
    end_factor: float = 0.0  # the factor reached at the last step
    warmup: int = 0

    def __post_init__(self):
        _check_common(self.warmup, self.start, self.end_factor)


@dataclass(frozen=True)
class CosineConfig:
    start: float = 0.0  # fraction of training after which the half-cosine decay begins
    end_factor: float = 0.0
    warmup: int = 0

    def __post_init__(self):
        _check_common(self.warmup, self.start, self.end_factor)


def _progress(step: int, total: int, start: float) -> float:
    """0 before ``start * total``, then linearly to 1 at ``total``."""
    begin = int(start * total)
    if step < begin or total <= begin:
        return 0.0
    return min(1.0, (step - begin) / (total - begin))


class Constant(Schedule):
    def __init__(self, config: ConstantConfig):
        self.config = config

    def factor(self, step: int, total: int) -> float:
        return _warm(step, self.config.warmup)


class Linear(Schedule):
    def __init__(self, config: LinearConfig):
        self.config = config

    def factor(self, step: int, total: int) -> float:
        t = _progress(step, total, self.config.start)
        return _warm(step, self.config.warmup) * (1.0 - t * (1.0 - self.config.end_factor))


class Cosine(Schedule):
    def __init__(self, config: CosineConfig):
        self.config = config

    def factor(self, step: int, total: int) -> float:
        t = _progress(step, total, self.config.start)
        end = self.config.end_factor
        return _warm(step, self.config.warmup) * (end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * t)))


def build_constant(config: ConstantConfig) -> Constant:
    """Constant rate."""
    return Constant(config)


def build_linear(config: LinearConfig) -> Linear:
    """Linear decay."""
    return Linear(config)


def build_cosine(config: CosineConfig) -> Cosine:
    """Cosine decay."""
    return Cosine(config)
