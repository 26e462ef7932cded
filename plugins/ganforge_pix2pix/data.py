"""Paired datasets for pix2pix: items carry ``image`` (the input) and ``target`` (the output).

- ``paired-side-by-side``: a folder of images that hold input and target side by side (A|B), the
  layout the pix2pix datasets ship in (facades, edges2shoes, maps, ...).
- ``paired-folders``: two folders whose files are matched by name (``x.jpg`` in one, ``x.png`` in
  the other); names without a partner are reported (how many, and which).
- ``edges``: any folder of photos, each paired with its edge map computed on the fly
  (``ganforge_pix2pix.edges``: Canny by default), "edges2cats" style.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import torch

from ganforge import DataWarning, Domains, ImageTensorDataset, load_image_folder
from ganforge_datasets.folders import find_data  # data root, download cache, data shipped with ganforge
from ganforge import DataError, list_images, read_image, to_tensor

from .edges import DETECTORS, edge_maps


def _preview(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


def _need(path: str, dataset: str) -> Path:
    if not str(path).strip():
        raise DataError(f"the {dataset} dataset needs a folder", hint="set data.path in the recipe, or pass --data FOLDER")
    return find_data(str(path).strip(), what=f"{dataset} folder")


# --------------------------------------------------------------------------- A|B side by side


@dataclass(frozen=True)
class SideBySideConfig:
    path: str = ""
    """Folder of A|B images (each twice as wide as high): absolute, relative, or under $GANFORGE_DATA."""
    input_side: Literal["left", "right"] = "left"
    """Which half is the generator's input (pix2pix's --direction AtoB is "left")."""
    image_size: int = 64
    max_images: int | None = None


def build_side_by_side(config: SideBySideConfig) -> Domains:
    folder = _need(config.path, "paired-side-by-side")
    files = list_images(folder)
    if not files:
        raise DataError(f"no images found in {folder}", hint="point data.path at a folder of A|B image pairs")
    if config.max_images is not None:
        files = files[: config.max_images]
    size = int(config.image_size)
    inputs, targets, names, skipped, not_pairs = [], [], [], [], []
    for path in files:
        name = path.relative_to(folder).as_posix()
        try:
            img = read_image(path)
        except DataError as exc:
            skipped.append(f"{name} ({exc.message.split(': ', 1)[-1]})")
            continue
        w, h = img.size
        if abs(w - 2 * h) > max(2, 0.1 * h):  # not a side-by-side pair
            not_pairs.append(f"{name} ({w}x{h})")
            continue
        left, right = img.crop((0, 0, w // 2, h)), img.crop((w - w // 2, 0, w, h))
        a, b = (left, right) if config.input_side == "left" else (right, left)
        inputs.append(to_tensor(a, size))
        targets.append(to_tensor(b, size))
        names.append(name)
    messages = []
    if skipped:
        messages.append(f"skipped {len(skipped)} unreadable image file(s) in {folder}: {_preview(skipped)}")
    if not_pairs:
        messages.append(f"skipped {len(not_pairs)} image(s) in {folder} that are not twice as wide as high "
                        f"(not A|B pairs): {_preview(not_pairs)}")
    if not names:
        raise DataError(f"none of the {len(files)} images in {folder} is an A|B pair"
                        + (f" ({messages[0]})" if messages else ""),
                        hint="each file must hold input and target side by side, twice as wide as high")
    for message in messages:
        warnings.warn(DataWarning(message), stacklevel=2)
    return {"pairs": ImageTensorDataset(torch.stack(inputs), names, paired={"target": torch.stack(targets)},
                                        source=str(folder), warnings=messages)}


# --------------------------------------------------------------------------- two folders matched by name


@dataclass(frozen=True)
class PairedFoldersConfig:
    path: str = ""
    """The folder holding both sub-folders (absolute, relative, or under $GANFORGE_DATA)."""
    input_dir: str = "a"
    """Sub-folder of the generator's inputs."""
    target_dir: str = "b"
    """Sub-folder of the targets; a file pairs with the input of the same name (extension ignored)."""
    unmatched: Literal["error", "skip"] = "error"
    """Names present in only one folder: stop with the list ("error"), or train on the matched
    pairs and warn ("skip")."""
    image_size: int = 64


def match_names(inputs: list[str], targets: list[str]) -> tuple[list[tuple[int, int]], list[str], list[str]]:
    """Pairs of indices of equal names (extension ignored), and the names only in inputs / only in targets."""
    key = lambda n: str(PurePosixPath(n).with_suffix(""))  # noqa: E731
    where = {key(n): i for i, n in enumerate(targets)}
    pairs, only_in = [], []
    for i, n in enumerate(inputs):
        j = where.pop(key(n), None)
        if j is None:
            only_in.append(n)
        else:
            pairs.append((i, j))
    only_target = [targets[j] for j in sorted(where.values())]
    return pairs, only_in, only_target


def build_paired_folders(config: PairedFoldersConfig) -> Domains:
    root = _need(config.path, "paired-folders")
    folders = {}
    for option, sub in (("input_dir", config.input_dir), ("target_dir", config.target_dir)):
        folder = root / sub
        if not folder.is_dir():
            existing = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
            raise DataError(f"folder '{sub}' not found in {root} (sub-folders there: {', '.join(existing) or 'none'})",
                            hint=f"set data.{option} to the sub-folder holding those images")
        folders[option] = folder
    a = load_image_folder(folders["input_dir"], config.image_size)
    b = load_image_folder(folders["target_dir"], config.image_size)
    pairs, only_a, only_b = match_names(a.names, b.names)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} of {len(a)} in '{config.input_dir}' have no partner in '{config.target_dir}': {_preview(only_a)}")
        if only_b:
            parts.append(f"{len(only_b)} of {len(b)} in '{config.target_dir}' have no partner in '{config.input_dir}': {_preview(only_b)}")
        message = f"{len(only_a) + len(only_b)} unmatched file name(s) in {root} ({'; '.join(parts)})"
        if config.unmatched == "error" or not pairs:
            hint = ("set data.unmatched = \"skip\" to train on the matched pairs only" if pairs
                    else "paired files must have the same name (the extension may differ)")
            raise DataError(message, hint=hint)
        warnings.warn(DataWarning(message), stacklevel=2)
    ia = torch.tensor([i for i, _ in pairs], dtype=torch.long)
    ib = torch.tensor([j for _, j in pairs], dtype=torch.long)
    return {"pairs": ImageTensorDataset(a.images.index_select(0, ia), [a.names[i] for i, _ in pairs],
                                        paired={"target": b.images.index_select(0, ib)}, source=str(root))}


# --------------------------------------------------------------------------- edges from photos


@dataclass(frozen=True)
class EdgesConfig:
    path: str = ""
    """Folder of photos (absolute, relative, or under $GANFORGE_DATA); each is the target of its edge map."""
    image_size: int = 64
    detector: Literal["canny", "sobel"] = "canny"
    sigma: float = 1.0  # Gaussian blur before the gradients (pixels)
    low: float = 0.1  # hysteresis thresholds, as fractions of each image's largest gradient
    high: float = 0.2
    holdout: int = 0
    """Leave out the last this many photos (file-name order), to test on edge maps the model never saw
    (write them with ``python -m ganforge_pix2pix.edges SRC OUT --last N``)."""

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
        if not 0 <= self.low <= self.high <= 1:
            raise ValueError(f"need 0 <= low <= high <= 1, got low={self.low}, high={self.high}")
        if self.sigma < 0 or self.holdout < 0:
            raise ValueError("sigma and holdout must not be negative")


def build_edges(config: EdgesConfig) -> Domains:
    photos = load_image_folder(_need(config.path, "edges"), config.image_size)
    n = len(photos) - config.holdout
    if n < 1:
        raise DataError(f"data.holdout = {config.holdout} leaves no training images of the {len(photos)} in {photos.source}",
                        hint="hold out fewer images")
    images, names = photos.images[:n], photos.names[:n]
    edges = edge_maps(images, config.detector, config.sigma, config.low, config.high)
    dataset = ImageTensorDataset(edges, names, paired={"target": images}, source=photos.source, warnings=photos.warnings)
    dataset.held_out = photos.names[n:]
    return {"pairs": dataset}
