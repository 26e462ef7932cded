"""Instance noise (Sønderby et al. 2017, "Amortised MAP Inference for Image Super-resolution";
Arjovsky & Bottou 2017): add Gaussian noise to every discriminator input, real and fake alike.

Noise makes the real and fake distributions overlap, which smooths the discriminator and keeps
its gradients informative early in training, when the two are easy to tell apart. Adding noise is
differentiable (d(x + n)/dx = 1), so the generator's gradient passes through unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from ganforge import Augmentation


@dataclass(frozen=True)
class NoiseConfig:
    sigma: float = 0.1  # standard deviation of the noise, in image units (images span [-1, 1])

    def __post_init__(self):
        if not math.isfinite(self.sigma) or self.sigma < 0:
            raise ValueError(f"sigma must be a finite number >= 0, got {self.sigma}")


class InstanceNoise(Augmentation):
    """``x + sigma * N(0, 1)``, elementwise, fresh noise on every call.

    Stateless (no annealing schedule: a recipe that wants less noise sets a smaller ``sigma``).
    The noise comes from torch's global generator on ``x``'s device, which the trainer seeds and
    checkpoints, so runs stay reproducible. The result is not clamped: noisy images may leave
    [-1, 1], which is the point (clamping would make the noise depend on the image).
    """

    stage: ClassVar[str] = "step"

    def __init__(self, config: NoiseConfig | None = None):
        self.config = config or NoiseConfig()
        self.sigma = float(self.config.sigma)

    def __call__(self, x: Tensor) -> Tensor:
        if self.sigma == 0.0:
            return x
        return x + self.sigma * torch.randn_like(x)

    def __repr__(self) -> str:
        return f"InstanceNoise(sigma={self.sigma:g})"


def build_noise(config: NoiseConfig | None = None) -> InstanceNoise:
    return InstanceNoise(config)
