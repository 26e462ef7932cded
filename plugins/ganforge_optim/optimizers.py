"""Optimisers: a registered builder takes its config and returns ``params -> torch.optim.Optimizer``.

Every config has ``lr`` (the group's base rate; schedules scale it). The remaining fields are the
torch optimiser's own options, validated here so a bad value fails when the recipe loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch

Factory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")


def _non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _betas(betas: tuple[float, float]) -> None:
    if not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be in [0, 1), got {list(betas)}")


@dataclass(frozen=True)
class AdamConfig:
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # beta1 = 0.5: the DCGAN paper's choice for stable GANs
    eps: float = 1e-8
    weight_decay: float = 0.0  # L2 added to the gradient (classic Adam); see adamw for decoupled decay
    amsgrad: bool = False

    def __post_init__(self):
        _positive("lr", self.lr)
        _betas(self.betas)
        _positive("eps", self.eps)
        _non_negative("weight_decay", self.weight_decay)


@dataclass(frozen=True)
class AdamWConfig(AdamConfig):
    weight_decay: float = 0.01


@dataclass(frozen=True)
class RMSpropConfig:
    lr: float = 5e-5  # the WGAN paper's rate
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False
    weight_decay: float = 0.0

    def __post_init__(self):
        _positive("lr", self.lr)
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {self.alpha}")
        _positive("eps", self.eps)
        _non_negative("momentum", self.momentum)
        _non_negative("weight_decay", self.weight_decay)


@dataclass(frozen=True)
class SGDConfig:
    lr: float = 1e-2
    momentum: float = 0.0
    nesterov: bool = False
    dampening: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self):
        _positive("lr", self.lr)
        _non_negative("momentum", self.momentum)
        _non_negative("weight_decay", self.weight_decay)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")


def build_adam(config: AdamConfig) -> Factory:
    """Adam (Kingma & Ba 2015)."""
    return lambda params: torch.optim.Adam(
        params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay, amsgrad=config.amsgrad
    )


def build_adamw(config: AdamWConfig) -> Factory:
    """AdamW (decoupled weight decay)."""
    return lambda params: torch.optim.AdamW(
        params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay, amsgrad=config.amsgrad
    )


def build_rmsprop(config: RMSpropConfig) -> Factory:
    """RMSprop."""
    return lambda params: torch.optim.RMSprop(
        params, lr=config.lr, alpha=config.alpha, eps=config.eps, momentum=config.momentum,
        centered=config.centered, weight_decay=config.weight_decay,
    )


def build_sgd(config: SGDConfig) -> Factory:
    """SGD."""
    return lambda params: torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, dampening=config.dampening,
        weight_decay=config.weight_decay,
    )
