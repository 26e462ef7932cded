"""pix2pix-style paired sets: every file is a side-by-side pair, left half A, right half B.

The builder splits each image into the domains ``a`` (left halves) and ``b`` (right halves), index
aligned, so an unpaired algorithm (CycleGAN) trains on them as they are, and also offers the domain
``pairs``: items with ``image`` = left half and the paired field ``target`` = right half, for a paired
(pix2pix-style) algorithm. The three share one copy of the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from ganforge import DataError, DataSource, Domains, ImageTensorDataset, list_images, read_image, to_tensor

from .catalog import PIX2PIX_SETS
from .folders import find_data


@dataclass(frozen=True)
class PairedConfig:
    path: str = ""
    """The set's folder (holding train/, val/, ...), resolved like image-folder's path."""
    split: Literal["train", "val", "test"] = "train"
    image_size: int = 64
    max_images: int | None = None


def paired_config(source: DataSource) -> type:
    annotations = {"data_source": ClassVar[DataSource], "path": str}
    ns = {"__annotations__": annotations, "data_source": source, "path": source.name, "__module__": __name__}
    return dataclass(frozen=True)(type(f"{source.name.title()}Config", (PairedConfig,), ns))


def build_paired(config: PairedConfig) -> Domains:
    if not str(config.path).strip():
        raise DataError("the paired dataset needs a folder", hint="set data.path, or pass --data FOLDER")
    root = find_data(str(config.path).strip(), what="dataset folder")
    folder = root / config.split
    if not folder.is_dir():
        has = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "none"
        raise DataError(f"split '{config.split}' not found in {root} (sub-folders there: {has})",
                        hint="set data.split to one of them")
    paths = list_images(folder)
    if config.max_images is not None:
        paths = paths[: int(config.max_images)]
    if not paths:
        raise DataError(f"no images found in {folder}")
    size = int(config.image_size)
    a = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    b = torch.empty_like(a)
    for i, path in enumerate(paths):
        img = read_image(path)
        w, h = img.size
        if w < 2:
            raise DataError(f"{path} is {w}x{h}: too narrow to be a side-by-side pair")
        a[i] = to_tensor(img.crop((0, 0, w // 2, h)), size)
        b[i] = to_tensor(img.crop((w // 2, 0, w, h)), size)
    names = [p.relative_to(folder).as_posix() for p in paths]
    return {"a": ImageTensorDataset(a, names, source=f"{folder} (left halves)"),
            "b": ImageTensorDataset(b, names, source=f"{folder} (right halves)"),
            "pairs": ImageTensorDataset(a, names, paired={"target": b}, source=f"{folder} (left -> right)")}


PAIRED_CONFIGS = {name: paired_config(source) for name, source in PIX2PIX_SETS.items()}
