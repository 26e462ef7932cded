"""Datasets as the core sees them: in-memory image tensors grouped into named domains.

A dataset plugin's builder returns :data:`Domains`, a mapping ``{domain: dataset}``. Noise-to-image
algorithms consume the domain ``"images"``; unpaired image-to-image ones ``"a"`` and ``"b"``.
Datasets are usually :class:`ImageTensorDataset` (all images decoded once, kept as ``uint8``), which
gives the trainer a fast :meth:`ImageTensorDataset.get_batch`.

Problems with the data that do not stop a run (unreadable files skipped, small images upscaled) are
reported with :func:`warnings.warn` using the category :class:`DataWarning`, one summarising warning
per problem and folder. The CLI shows them; the dataset also keeps them in ``dataset.warnings``.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ganforge.core.errors import DataError
from ganforge.data.images import IMAGE_SUFFIXES, list_images, read_image, to_float, to_tensor

DATA_ENV = "GANFORGE_DATA"

Domains = dict[str, Dataset]
"""What a dataset builder returns: domain name -> dataset of float images ``[3, H, W]`` in ``[-1, 1]``."""

PROGRESS_MIN_FILES = 500
"""Show a decoding progress bar only for folders with more files than this (and only on a tty)."""

CACHE_MAX_BYTES = 1 << 30
"""Decoded folders kept in memory for reuse within one process (least recently used dropped first)."""


class DataWarning(UserWarning):
    """A problem with the data that does not stop the run (skipped files, upscaled images)."""


def data_root() -> Path | None:
    """The data root from ``$GANFORGE_DATA`` (``None`` when unset or empty)."""
    value = os.environ.get(DATA_ENV, "").strip()
    return Path(value).expanduser() if value else None


def resolve_data_path(path: str | Path, what: str = "data", *, also: Sequence[Path] = (),
                      hint: str | None = None) -> Path:
    """Find ``path``: as given (absolute, or relative to the current folder), else under the data root,
    else under each folder of ``also`` (in order; e.g. a download cache, a plugin's bundled data).

    Raises :class:`DataError` listing every place it looked and how to fix it (``hint`` replaces
    the default advice when the path is relative).
    """
    raw = str(path)
    p = Path(raw).expanduser()
    candidates: list[Path] = []
    if p.is_absolute():
        candidates.append(p)
    else:
        candidates.append(Path.cwd() / p)
        root = data_root()
        if root is not None:
            candidates.append(root / p)
        candidates.extend(Path(extra) / p for extra in also)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    if p.is_absolute():
        hint = "check the path, or pass --data FOLDER"
    else:
        root_note = "" if data_root() is not None else f" (${DATA_ENV} is not set)"
        looked += root_note
        hint = hint or f"set {DATA_ENV} to the folder that holds {raw}, or pass --data FOLDER"
    raise DataError(f"{what} not found: '{raw}' (looked for {looked})", hint=hint)


class ImageTensorDataset(Dataset):
    """Images held in memory as one ``uint8`` tensor ``[N, 3, H, W]``; items are float ``[-1, 1]``.

    ``names`` are the images' file names (relative to their folder) or generated ids. ``warnings``
    holds the messages of the :class:`DataWarning` s raised while building it. The ``uint8`` tensor
    may be shared with the in-process cache: treat ``images`` as read-only.

    Items may carry more fields than the image (see ``ganforge.data.items.FIELD_KINDS``):
    ``labels`` (``int64 [N]`` class indices, with ``class_names``) adds a ``label`` field, and
    ``paired`` (``{field: uint8 [N, 3, H, W]}``) adds image fields such as a pix2pix ``target``.
    An item is then a dict of fields; ``get_fields`` batches every field, ``get_batch`` the images.
    """

    def __init__(self, images: Tensor, names: Sequence[str] | None = None, *, source: str | None = None,
                 warnings: Sequence[str] = (), labels: Tensor | Sequence[int] | None = None,
                 class_names: Sequence[str] | None = None, paired: dict[str, Tensor] | None = None):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a uint8 tensor [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        names = [f"{i:06d}" for i in range(len(images))] if names is None else list(names)
        if len(names) != len(images):
            raise ValueError(f"{len(names)} names for {len(images)} images")
        self.images = images
        self.names = names
        self.source = source
        self.warnings = list(warnings)
        self.labels: Tensor | None = None
        self.class_names: tuple[str, ...] | None = tuple(class_names) if class_names is not None else None
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.long)
            if labels.shape != (len(images),):
                raise ValueError(f"expected {len(images)} labels, got shape {list(labels.shape)}")
            if self.class_names is not None and len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(self.class_names):
                raise ValueError(f"labels must be in [0, {len(self.class_names)}) for {len(self.class_names)} class names")
            self.labels = labels
        self.paired: dict[str, Tensor] = {}
        for key, other in (paired or {}).items():
            if key in ("image", "label"):
                raise ValueError(f"a paired field cannot be called '{key}'")
            if other.dtype != torch.uint8 or other.shape != images.shape:
                raise ValueError(f"paired field '{key}' must be uint8 {list(images.shape)}, got {other.dtype} {list(other.shape)}")
            self.paired[key] = other

    @property
    def fields(self) -> dict[str, str]:
        """Field name -> kind of every item (``image`` always)."""
        fields = {"image": "image"}
        if self.labels is not None:
            fields["label"] = "label"
        fields.update({key: "image" for key in self.paired})
        return fields

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        if self.labels is None and not self.paired:
            return to_float(self.images[index])
        return {k: v[0] for k, v in self.get_fields(torch.tensor([index])).items()}

    def _index(self, indices: Tensor | Sequence[int]) -> Tensor:
        if not isinstance(indices, Tensor):
            indices = torch.as_tensor(indices, dtype=torch.long)
        return indices.to(device=self.images.device, dtype=torch.long)

    def get_batch(self, indices: Tensor | Sequence[int]) -> Tensor:
        """Float images ``[B, 3, H, W]`` in ``[-1, 1]`` for ``indices`` (one gather, one conversion)."""
        return to_float(self.images.index_select(0, self._index(indices)))

    def get_fields(self, indices: Tensor | Sequence[int]) -> dict[str, Tensor]:
        """Every field of the items at ``indices``, batched and row-aligned."""
        idx = self._index(indices)
        out = {"image": to_float(self.images.index_select(0, idx))}
        if self.labels is not None:
            out["label"] = self.labels.index_select(0, idx.to(self.labels.device))
        for key, other in self.paired.items():
            out[key] = to_float(other.index_select(0, idx))
        return out

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of every image."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __repr__(self) -> str:
        h, w = self.image_size
        src = f", source={self.source!r}" if self.source else ""
        return f"{type(self).__name__}({len(self)} images {h}x{w}{src})"


# --- loading folders ---------------------------------------------------------------------------


@dataclass
class _Decoded:
    images: Tensor
    names: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size()


_cache: OrderedDict[tuple, _Decoded] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_get(key: tuple) -> _Decoded | None:
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
        return hit


def _cache_put(key: tuple, value: _Decoded) -> None:
    if value.nbytes > CACHE_MAX_BYTES:
        return
    with _cache_lock:
        _cache[key] = value
        while sum(v.nbytes for v in _cache.values()) > CACHE_MAX_BYTES:
            _cache.popitem(last=False)


def _names_preview(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


def _iterate(paths: list[Path], progress: bool, label: str):
    if progress and len(paths) > PROGRESS_MIN_FILES and sys.stdout.isatty():
        from rich.progress import track

        return track(paths, description=f"decoding {label}", transient=True)
    return paths


def load_image_folder(folder: str | Path, image_size: int, *, progress: bool = True,
                      max_images: int | None = None) -> ImageTensorDataset:
    """Decode every image under ``folder`` (recursively) to ``image_size x image_size``.

    Images are resized so the shorter side is ``image_size`` and center-cropped. Unreadable files
    are skipped and images smaller than ``image_size`` are upscaled; each of these emits one
    summarising :class:`DataWarning` (count and first names). With ``max_images`` only the first
    that many usable images (in natural file-name order) are decoded.

    Raises :class:`DataError` if the folder is missing or not a folder, holds no image files, or
    none of them can be read. Results are cached in memory, keyed by the folder, the size and the
    files' modification times, so building the same dataset again in one process is instant.
    """
    folder = Path(folder).expanduser()
    if image_size is None or int(image_size) < 1:
        raise DataError(f"image size must be a positive number of pixels, got {image_size}")
    image_size = int(image_size)
    if max_images is not None and int(max_images) < 1:
        raise DataError(f"max_images must be at least 1, got {max_images}")
    if not folder.exists():
        raise DataError(f"image folder not found: {folder}")
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder} (expected a folder of images)")

    paths = list_images(folder)
    if not paths:
        others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        holds = f"; it holds {len(others)} other entries, e.g. {_names_preview(others)}" if others else "; it is empty"
        raise DataError(
            f"no images found in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}{holds})",
            hint="point data.path (or --data) at a folder of image files",
        )

    resolved = folder.resolve()
    try:
        stamps = tuple((p.relative_to(folder).as_posix(), st.st_mtime_ns, st.st_size)
                       for p in paths for st in (p.stat(),))
    except OSError:  # a file vanished while listing; decode without caching
        stamps = None
    key = (str(resolved), image_size, max_images, stamps)
    hit = _cache_get(key) if stamps is not None else None
    if hit is None:
        hit = _decode(folder, paths, image_size, progress=progress, max_images=max_images)
        if stamps is not None:
            _cache_put(key, hit)
    for message in hit.warnings:
        warnings.warn(DataWarning(message), stacklevel=2)
    return ImageTensorDataset(hit.images, hit.names, source=str(folder), warnings=hit.warnings)


def _decode(folder: Path, paths: list[Path], image_size: int, *, progress: bool,
            max_images: int | None) -> _Decoded:
    capacity = len(paths) if max_images is None else min(len(paths), int(max_images))
    out = torch.empty((capacity, 3, image_size, image_size), dtype=torch.uint8)
    names: list[str] = []
    skipped: list[tuple[str, str]] = []
    upscaled: list[str] = []
    for path in _iterate(paths, progress, folder.name or str(folder)):
        if len(names) >= capacity:
            break
        name = path.relative_to(folder).as_posix()
        try:
            img = read_image(path)
        except DataError as exc:
            reason = exc.message.split(": ", 1)[-1] if exc.message.startswith("cannot read image") else exc.message
            skipped.append((name, reason))
            continue
        if min(img.size) < image_size:
            upscaled.append(name)
        out[len(names)] = to_tensor(img, image_size)
        names.append(name)

    if not names:
        first_name, first_reason = skipped[0]
        raise DataError(
            f"none of the {len(skipped)} image files in {folder} could be read "
            f"(e.g. {first_name}: {first_reason})",
            hint="check that the files are valid images (not truncated downloads or Git LFS pointers)",
        )
    messages: list[str] = []
    if skipped:
        first_name, first_reason = skipped[0]
        messages.append(
            f"skipped {len(skipped)} unreadable image file(s) in {folder}: "
            f"{_names_preview([n for n, _ in skipped])} ({first_name}: {first_reason})"
        )
    if upscaled:
        messages.append(
            f"upscaled {len(upscaled)} image(s) in {folder} smaller than {image_size}x{image_size} "
            f"(they will look blurry): {_names_preview(upscaled)}"
        )
    images = out if len(names) == capacity else out[: len(names)].clone()
    return _Decoded(images, names, messages)
