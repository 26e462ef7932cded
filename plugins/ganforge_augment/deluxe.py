"""Classic ("deluxe") augmentation of real images as they are loaded: slight zoom, random crop,
horizontal flip and optional colour jitter. Not differentiable and not meant to be: fakes never
see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge import Augmentation


@dataclass(frozen=True)
class DeluxeConfig:
    scale: float = 1.1  # enlarge by this factor, then random-crop back to the original size
    flip: bool = True  # random horizontal flip, probability 0.5 per image
    jitter: float = 0.0  # brightness/contrast/saturation factors drawn from [1 - jitter, 1 + jitter]


def _factors(b: int, jitter: float, device) -> Tensor:
    return 1.0 + (torch.rand(b, 1, 1, 1, device=device) * 2.0 - 1.0) * jitter


def random_resized_crop(x: Tensor, scale: float) -> Tensor:
    """Upscale by ``scale`` (bilinear) and crop back to ``H x W`` at a random offset per image."""
    b, _, h, w = x.shape
    big_h, big_w = max(h, round(h * scale)), max(w, round(w * scale))
    if (big_h, big_w) == (h, w):
        return x
    big = F.interpolate(x, size=(big_h, big_w), mode="bilinear", align_corners=False)
    top = torch.randint(0, big_h - h + 1, (b, 1), device=x.device)
    left = torch.randint(0, big_w - w + 1, (b, 1), device=x.device)
    rows = (top + torch.arange(h, device=x.device)).view(b, h, 1)
    cols = (left + torch.arange(w, device=x.device)).view(b, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    # Advanced indexing on [B, H', W', C] picks an [B, H, W, C] window per image in one go.
    return big.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _grey(x01: Tensor) -> Tensor:
    """Per-pixel luminance ``[B, 1, H, W]`` (ITU-R 601 weights for RGB, plain mean otherwise)."""
    if x01.shape[1] == 3:
        return 0.299 * x01[:, 0:1] + 0.587 * x01[:, 1:2] + 0.114 * x01[:, 2:3]
    return x01.mean(1, keepdim=True)


def color_jitter(x01: Tensor, jitter: float) -> Tensor:
    """Brightness, contrast, saturation jitter on images in [0, 1]; result clamped to [0, 1]."""
    b = x01.shape[0]
    x01 = x01 * _factors(b, jitter, x01.device)
    mean = _grey(x01).mean(dim=(1, 2, 3), keepdim=True)
    x01 = (x01 - mean) * _factors(b, jitter, x01.device) + mean
    grey = _grey(x01)
    x01 = (x01 - grey) * _factors(b, jitter, x01.device) + grey
    return x01.clamp(0.0, 1.0)


class DeluxeAugment(Augmentation):
    """Augments a batch ``[B, C, H, W]`` (or a single image ``[C, H, W]``) in [-1, 1]; returns the
    same shape, dtype and device, still in [-1, 1]. Each image gets its own crop, flip and jitter.
    """

    stage = "real"

    def __init__(self, config: DeluxeConfig | None = None):
        self.config = config or DeluxeConfig()
        if self.config.scale < 1.0:
            raise ValueError(f"scale must be >= 1.0 (zoom in, then crop), got {self.config.scale}")
        if not 0.0 <= self.config.jitter <= 1.0:
            raise ValueError(f"jitter must be in [0, 1], got {self.config.jitter}")

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        single = x.dim() == 3
        if single:
            x = x.unsqueeze(0)
        dtype = x.dtype
        out = random_resized_crop(x.float(), self.config.scale).clamp(-1.0, 1.0)
        if self.config.flip:
            flip = torch.rand(out.shape[0], device=out.device) < 0.5
            out = torch.where(flip.view(-1, 1, 1, 1), out.flip(3), out)
        if self.config.jitter > 0:
            out = color_jitter((out + 1.0) * 0.5, self.config.jitter) * 2.0 - 1.0
        out = out.to(dtype)
        return out[0] if single else out

    def __repr__(self) -> str:
        c = self.config
        return f"DeluxeAugment(scale={c.scale}, flip={c.flip}, jitter={c.jitter})"


def build_deluxe(config: DeluxeConfig | None = None) -> DeluxeAugment:
    return DeluxeAugment(config)
