"""``shapes``: a procedural dataset of coloured shapes on soft backgrounds, needing no files.

Every image is drawn with PIL at twice the target size and downsampled (box filter), which gives
smooth edges. Everything comes from ``numpy.random.Generator(PCG64(seed))``, so a seed always gives
the same images.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganforge import DataError, DataSource, did_you_mean, Domains, ImageTensorDataset

SHAPES = ("circle", "square", "triangle", "star")
"""Shape names the ``shapes`` option accepts."""


@dataclass(frozen=True)
class ShapesConfig:
    data_source: ClassVar[DataSource] = DataSource("shapes", "generated", summary="coloured shapes, drawn on the fly")
    num_images: int = 2048
    image_size: int = 32
    seed: int = 0
    shapes: str = "circle,square,triangle"
    """Comma-separated shape names to draw from (circle, square, triangle, star)."""


def parse_shapes(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(s.strip().lower() for s in str(text).split(",") if s.strip()))
    valid = ", ".join(SHAPES)
    if not names:
        raise DataError("data.shapes is empty", hint=f"list one or more of: {valid}")
    for name in names:
        if name not in SHAPES:
            raise DataError(f"unknown shape '{name}'{did_you_mean(name, SHAPES)}; valid shapes: {valid}")
    return names


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def _polygon(cx: float, cy: float, radii: list[float], angle: float) -> list[tuple[float, float]]:
    n = len(radii)
    return [(cx + r * math.cos(angle + 2 * math.pi * k / n), cy + r * math.sin(angle + 2 * math.pi * k / n))
            for k, r in enumerate(radii)]


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float, fill) -> None:
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif kind == "square":
        draw.polygon(_polygon(cx, cy, [r] * 4, angle), fill=fill)
    elif kind == "triangle":
        draw.polygon(_polygon(cx, cy, [r] * 3, angle), fill=fill)
    elif kind == "star":
        draw.polygon(_polygon(cx, cy, [r, r * 0.45] * 5, angle), fill=fill)
    else:  # pragma: no cover - parse_shapes guards this
        raise ValueError(kind)


def render_shapes(num_images: int, image_size: int, seed: int, shapes: tuple[str, ...]) -> torch.Tensor:
    """``uint8`` images ``[num_images, 3, image_size, image_size]``, deterministic in ``seed``."""
    rng = np.random.Generator(np.random.PCG64(seed))
    big = 2 * image_size
    out = np.empty((num_images, image_size, image_size, 3), dtype=np.uint8)
    for i in range(num_images):
        bg = _rgb(rng.random(), 0.08 + 0.22 * rng.random(), 0.82 + 0.18 * rng.random())
        img = Image.new("RGB", (big, big), bg)
        draw = ImageDraw.Draw(img)
        count = 1 if rng.random() < 0.75 else 2
        for _ in range(count):
            kind = shapes[int(rng.integers(len(shapes)))]
            r = big * (0.14 + 0.2 * rng.random())
            cx = r + (big - 2 * r) * rng.random()
            cy = r + (big - 2 * r) * rng.random()
            angle = 2 * math.pi * rng.random()
            fill = _rgb(rng.random(), 0.55 + 0.45 * rng.random(), 0.3 + 0.6 * rng.random())
            _draw_shape(draw, kind, cx, cy, r, angle, fill)
        out[i] = np.asarray(img.reduce(2))  # 2x2 box average: anti-aliased edges
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


@lru_cache(maxsize=4)
def _cached(num_images: int, image_size: int, seed: int, shapes: tuple[str, ...]) -> torch.Tensor:
    return render_shapes(num_images, image_size, seed, shapes)


def build_shapes(config: ShapesConfig) -> Domains:
    if int(config.num_images) < 1:
        raise DataError(f"data.num_images must be at least 1, got {config.num_images}")
    if int(config.image_size) < 4:
        raise DataError(f"data.image_size must be at least 4 pixels, got {config.image_size}")
    shapes = parse_shapes(config.shapes)
    images = _cached(int(config.num_images), int(config.image_size), int(config.seed), shapes)
    names = [f"shape-{i:05d}" for i in range(len(images))]
    return {"images": ImageTensorDataset(images, names, source=f"shapes(seed={config.seed})")}
