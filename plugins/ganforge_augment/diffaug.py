"""Differentiable Augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
GAN Training").

Applied inside the training step to *every* discriminator input, real and fake alike, so D never
sees un-augmented images and cannot tell the two apart by the augmentation. Every op is
differentiable w.r.t. the images, so the generator's gradient flows back through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ganforge import Augmentation


def _uniform(x: Tensor, low: float, high: float) -> Tensor:
    """Per-sample uniform factors shaped ``[B, 1, 1, 1]`` in ``x``'s dtype and device."""
    r = torch.rand(x.shape[0], 1, 1, 1, device=x.device)
    return (r * (high - low) + low).to(x.dtype)


def brightness(x: Tensor) -> Tensor:
    """Add U[-0.5, 0.5] to every pixel, per sample."""
    return x + _uniform(x, -0.5, 0.5)


def saturation(x: Tensor) -> Tensor:
    """Scale each pixel's distance from its own channel mean (its grey value) by U[0, 2], per
    sample: 0 is greyscale, 1 unchanged, 2 twice as saturated."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _uniform(x, 0.0, 2.0) + mean


def contrast(x: Tensor) -> Tensor:
    """Scale each image's distance from its mean by U[0.5, 1.5], per sample."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, 0.5, 1.5) + mean


def color(x: Tensor) -> Tensor:
    """Random brightness, saturation and contrast, in that order, each per sample."""
    return contrast(saturation(brightness(x)))


def _shift(x: Tensor, offset: Tensor, dim: int) -> Tensor:
    """Shift each sample of ``x`` by ``offset[b]`` pixels along ``dim`` (2 = rows, 3 = columns),
    filling with zeros. ``out[..., i, ...] = x[..., i - offset, ...]``, done with ``gather`` (whose
    backward scatters the gradient back) and a validity mask, so it is differentiable."""
    n = x.shape[dim]
    src = torch.arange(n, device=x.device).unsqueeze(0) - offset.unsqueeze(1)  # [B, n]
    valid = (src >= 0) & (src < n)
    view = [x.shape[0], 1, 1, 1]
    view[dim] = n
    src = src.clamp(0, n - 1).view(view).expand_as(x)
    return x.gather(dim, src) * valid.view(view).to(x.dtype)


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by an integer offset in [-ratio*size, ratio*size] per axis (zero padding)."""
    b, _, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-max_y, max_y + 1, (b,), device=x.device)
    dx = torch.randint(-max_x, max_x + 1, (b,), device=x.device)
    return _shift(_shift(x, dy, 2), dx, 3)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero a rectangle of ``ratio * size`` per side at a random location per image.

    The patch always lies fully inside the image, so exactly ``cut_h * cut_w`` pixels are
    zeroed (the reference implementation lets it hang over the border).
    """
    b, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h - cut_h + 1, (b, 1), device=x.device)
    left = torch.randint(0, w - cut_w + 1, (b, 1), device=x.device)
    rows = torch.arange(h, device=x.device).unsqueeze(0)
    cols = torch.arange(w, device=x.device).unsqueeze(0)
    in_rows = (rows >= top) & (rows < top + cut_h)  # [B, H]
    in_cols = (cols >= left) & (cols < left + cut_w)  # [B, W]
    keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))  # [B, H, W]
    return x * keep.unsqueeze(1).to(x.dtype)


def cutmix(x: Tensor, alpha: float = 1.0) -> Tensor:
    """CutMix (Yun et al. 2019) within the batch: paste into every image a random box of another
    image of the same batch, at the same place.

    The share of the image the box covers is ``1 - lam`` with ``lam ~ Beta(alpha, alpha)`` (for
    ``alpha = 1`` uniform in [0, 1]); its sides are ``sqrt(1 - lam)`` times the image's (rounded),
    and it always lies fully inside the image (the reference implementation clips a box that hangs
    over the border, which makes it smaller). Image ``i`` takes its box from image ``partner[i]``,
    a random cyclic order of the batch, so every image gets another's (a batch of one is returned
    unchanged). Differentiable with respect to both images; labels are not mixed (an algorithm that
    passes labels to D keeps each image's own).
    """
    b, _, h, w = x.shape
    if b < 2:
        return x
    if alpha == 1.0:
        lam = torch.rand(b, device=x.device)
    else:
        a = torch.tensor(float(alpha), device=x.device)
        lam = torch.distributions.Beta(a, a).sample((b,))
    side = (1.0 - lam).clamp(0.0, 1.0).sqrt()
    cut_h = (side * h).round().long()
    cut_w = (side * w).round().long()
    top = (torch.rand(b, device=x.device) * (h - cut_h + 1)).floor().long().clamp(max=h)
    left = (torch.rand(b, device=x.device) * (w - cut_w + 1)).floor().long().clamp(max=w)
    order = torch.randperm(b, device=x.device)
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)  # order[k] takes its box from order[k + 1]
    rows = torch.arange(h, device=x.device).unsqueeze(0)
    cols = torch.arange(w, device=x.device).unsqueeze(0)
    in_rows = (rows >= top.unsqueeze(1)) & (rows < (top + cut_h).unsqueeze(1))  # [B, H]
    in_cols = (cols >= left.unsqueeze(1)) & (cols < (left + cut_w).unsqueeze(1))  # [B, W]
    box = (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1).to(x.dtype)  # [B, 1, H, W]
    return x * (1 - box) + x[partner] * box


POLICIES = ("color", "translation", "cutout", "saturation", "cutmix")


@dataclass(frozen=True)
class DiffAugmentConfig:
    policy: str = "translation,cutout"  # comma-separated, applied in the order given: color, saturation, translation, cutout, cutmix
    translation_ratio: float = 0.125
    cutout_ratio: float = 0.5
    probability: float = 1.0  # per-sample chance that an image is augmented at all


def parse_policy(policy: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown DiffAugment policy {', '.join(map(repr, unknown))} in {policy!r}; "
            f"valid policies: {', '.join(POLICIES)} (comma-separated)"
        )
    return names


class DiffAugment(Augmentation):
    """Applies the configured policies to a batch ``[B, C, H, W]``; keeps shape, dtype, device.

    Parameters are drawn per sample from torch's global RNG on the input's device. With
    ``probability < 1`` each image is independently augmented (all policies) with that chance
    and otherwise passed through unchanged.
    """

    stage = "step"

    def __init__(self, config: DiffAugmentConfig | None = None):
        self.config = config or DiffAugmentConfig()
        c = self.config
        self.policies = parse_policy(c.policy)
        if not 0.0 <= c.translation_ratio < 0.5:
            raise ValueError(f"translation_ratio must be in [0, 0.5), got {c.translation_ratio}")
        if not 0.0 < c.cutout_ratio <= 1.0:
            raise ValueError(f"cutout_ratio must be in (0, 1], got {c.cutout_ratio}")
        if not 0.0 <= c.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {c.probability}")
        ops: dict[str, Callable[[Tensor], Tensor]] = {
            "color": color,
            "saturation": saturation,
            "translation": lambda x: translation(x, c.translation_ratio),
            "cutout": lambda x: cutout(x, c.cutout_ratio),
            "cutmix": cutmix,
        }
        self._ops = [ops[name] for name in self.policies]

    def __call__(self, x: Tensor) -> Tensor:
        if not self._ops or self.config.probability == 0.0:
            return x
        out = x
        for op in self._ops:
            out = op(out)
        if self.config.probability < 1.0:
            apply = torch.rand(x.shape[0], device=x.device) < self.config.probability
            out = torch.where(apply.view(-1, 1, 1, 1), out, x)
        return out

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.policies)!r}, probability={self.config.probability})"


def build_diffaug(config: DiffAugmentConfig | None = None) -> DiffAugment:
    return DiffAugment(config)
