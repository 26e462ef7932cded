"""A cheap feature extractor that needs no weights: downsampled pixels.

Its scores carry its name (``pixels/fd``, ``pixels/kd``): a pixel-space distance follows trends
within one run but is not comparable with FID/KID anywhere else. Tests use it, and it works on a
machine without the standard network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from ganforge import FeatureExtractor


@dataclass(frozen=True)
class PixelsConfig:
    size: int = 8
    """Images are area-averaged to size x size; features are the 3 * size * size values."""
    batch_size: int = 256

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"size must be positive, got {self.size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")


class Pixels(FeatureExtractor):
    standard = False

    def __init__(self, config: PixelsConfig | None = None):
        self.config = config or PixelsConfig()
        self.batch_size = self.config.batch_size

    def fingerprint(self) -> str:
        return f"pixels:{self.config.size}"

    def __call__(self, images: Tensor) -> Tensor:
        x = images.detach().float().clamp(-1, 1)
        return F.adaptive_avg_pool2d(x, self.config.size).flatten(1)

    def describe(self) -> str:
        s = self.config.size
        return f"pixels: area-averaged to {s}x{s}, {3 * s * s}-d (not FID's network; scores carry its name)"
