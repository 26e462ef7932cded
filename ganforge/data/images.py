"""Reading, converting and writing images. Family-agnostic; used by datasets and the CLI.

Conventions: images on disk are read as 8-bit RGB; in memory they are ``uint8`` tensors
``[3, H, W]`` (compact, for datasets) or float tensors in ``[-1, 1]`` (what networks see).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from ganforge.core.errors import DataError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
"""Suffixes (lower case, with the dot) of the files treated as images; matching ignores case."""

_WHITE = (255, 255, 255)


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has an image suffix (case-insensitive). Does not look at the contents."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers numerically: ``img2`` before ``img10``."""
    parts = re.split(r"(\d+)", text.lower())
    # re.split with a capture group alternates text, number, text, ... so types line up.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), text


def list_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder`` (recursive), naturally sorted by relative path.

    Hidden files and folders (names starting with ``.``, e.g. ``.DS_Store`` or macOS ``._x.png``
    resource forks) are skipped. Symlinked subfolders are followed (once each).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    found: list[tuple[tuple, Path]] = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink loop
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or not is_image_file(name):
                continue
            path = Path(dirpath, name)
            rel = path.relative_to(folder).as_posix()
            found.append((tuple(natural_key(part) for part in rel.split("/")), path))
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """Single-channel 16/32-bit integer or float image -> 8-bit ``L``, scaling (not clipping)."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and arr.size and arr.min() >= 0 and arr.max() <= 65535):
        # 16-bit data (PNG 16-bit grayscale opens as I;16 or I): 65535 -> 255, 257 per step.
        out = (arr.astype(np.uint32) + 128) // 257
    elif img.mode == "F" and arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
        out = np.rint(arr * 255.0)
    else:  # other 32-bit ranges: stretch the image's own range to 0..255
        arr = arr.astype(np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        out = np.zeros_like(arr) if hi <= lo else np.rint((arr - lo) * (255.0 / (hi - lo)))
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    Transparency (RGBA, LA, PA, palette images with a transparent colour) is composited on a
    white background, so transparent areas become white rather than whatever colour the hidden
    pixels happen to store. 16-bit images are scaled to 8 bits (65535 -> 255), not clipped.
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _high_depth_to_l(img).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def read_image(path: str | Path) -> Image.Image:
    """Read an image file as an 8-bit RGB PIL image, fully decoded.

    Any failure (missing, not an image, corrupt, truncated) raises :class:`DataError` with a
    one-line message naming the file and the reason. EXIF orientation is applied; for animated
    files the first frame is used. See :func:`to_rgb` for how modes are converted.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so truncated/corrupt data fails here
            ImageOps.exif_transpose(img, in_place=True)
            return to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise DataError(f"cannot read image {path}: too large ({_one_line(exc)})") from exc
    except Image.UnidentifiedImageError as exc:
        raise DataError(f"cannot read image {path}: not an image file (or an unsupported format)") from exc
    except FileNotFoundError as exc:
        raise DataError(f"cannot read image {path}: file not found") from exc
    except IsADirectoryError as exc:
        raise DataError(f"cannot read image {path}: is a folder") from exc
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # OSError (truncated), SyntaxError/ValueError (broken headers), ...
        raise DataError(f"cannot read image {path}: {_one_line(exc)}") from exc


def resize_crop(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bicubic, antialiased) and center-crop to a square."""
    if size < 1:
        raise ValueError(f"image size must be positive, got {size}")
    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        # PIL scales the filter support when downsampling, i.e. it antialiases.
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_tensor(img: Image.Image, size: int | None = None) -> Tensor:
    """PIL image -> ``uint8`` tensor ``[3, H, W]``; with ``size``, resized and center-cropped
    to ``size x size`` (see :func:`resize_crop`)."""
    img = to_rgb(img)
    if size is not None:
        img = resize_crop(img, size)
    arr = np.array(img, dtype=np.uint8, copy=True)  # writable copy: torch shares its memory
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def to_float(images: Tensor) -> Tensor:
    """``uint8`` images -> float in ``[-1, 1]`` (0 -> -1, 255 -> 1)."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """Float images in ``[-1, 1]`` -> ``uint8`` (values outside are clamped)."""
    return images.detach().float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def tensor_to_pil(t: Tensor) -> Image.Image:
    """Float image ``[3, H, W]`` (or ``[1, H, W]``, or a batch of one) in ``[-1, 1]`` -> PIL RGB."""
    t = t.detach().cpu()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor [3, H, W], got shape {list(t.shape)}")
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    arr = to_uint8(t).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(arr, mode="RGB")


def grid_size(num: int, height: int, width: int, nrow: int, padding: int = 2) -> tuple[int, int]:
    """(width, height) in pixels of the grid :func:`save_image_grid` writes."""
    cols = max(1, min(nrow, num))
    rows = math.ceil(num / cols)
    return cols * (width + padding) + padding, rows * (height + padding) + padding


def save_pil_atomic(img: Image.Image, path: str | Path) -> Path:
    """Save ``img`` to ``path`` atomically: write a temporary file beside it, then rename.

    A reader (or a crash) never sees a half-written file. The format follows the suffix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"cannot save image {path}: unknown image suffix '{path.suffix}'", hint="use .png or .jpg")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def make_grid_image(images: Tensor | Iterable[Tensor], nrow: int = 8, padding: int = 2) -> Image.Image:
    """Images ``[N, 3, H, W]`` in ``[-1, 1]`` -> one PIL image, ``nrow`` images per row."""
    from torchvision.utils import make_grid

    if not isinstance(images, Tensor):
        images = torch.stack(list(images))
    images = images.detach().cpu().float()
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"expected images [N, 3, H, W] with N >= 1, got shape {list(images.shape)}")
    grid = make_grid(images.clamp(-1, 1), nrow=max(1, int(nrow)), padding=padding, pad_value=-1.0)
    return tensor_to_pil(grid)


def save_image_grid(images: Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Write images ``[N, 3, H, W]`` in ``[-1, 1]`` as one grid image (``nrow`` per row,
    2-pixel black padding), atomically. Returns the path."""
    return save_pil_atomic(make_grid_image(images, nrow=nrow, padding=2), path)
