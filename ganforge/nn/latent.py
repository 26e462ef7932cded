"""Latent-space helpers for noise-to-image families: spherical interpolation and grid layout."""

from __future__ import annotations

import math

import torch


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two latent vectors (linear when they are nearly parallel)."""
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.acos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def latent_loop(points: torch.Tensor, frames: int) -> torch.Tensor:
    """Latents walking a closed loop through ``points`` (``[N, D]``), ``frames`` per segment."""
    return torch.stack([slerp(a, b, float(t)) for a, b in zip(points, points.roll(-1, 0))
                        for t in torch.linspace(0, 1, frames + 1)[:-1]])


def grid_columns(n: int) -> int:
    """Columns of a near-square grid of ``n`` images."""
    return max(1, int(math.ceil(math.sqrt(n))))
