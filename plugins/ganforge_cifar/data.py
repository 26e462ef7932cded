"""The ``cifar10`` and ``cifar100`` datasets: the binary record files read into one uint8 tensor.

``ganforge data fetch cifar10`` puts the files in the download cache; a copy of your own (the
extracted ``cifar-10-batches-bin`` folder) works too, under ``$GANFORGE_DATA/cifar10`` or named with
``data.path`` / ``--data``. Every item carries its class (``label``), and the class names come from
the set's own names file, so the class-conditional recipes take their class count from the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge import DataError, DataSource, Domains, ImageTensorDataset, datasets_dir, resolve_data_path

from .catalog import CIFAR10, CIFAR100
from .records import CIFAR10_FORMAT, CIFAR100_FORMAT, SIDE, RecordFormat, check_labels, read_class_names, read_records

Split = Literal["train", "test", "all"]


@dataclass(frozen=True)
class Cifar10Config:
    data_source: ClassVar[DataSource] = CIFAR10
    record_format: ClassVar[RecordFormat] = CIFAR10_FORMAT
    path: str = "cifar10"
    """The folder holding the record files: absolute, or relative to the current folder,
    $GANFORGE_DATA or the download cache (`ganforge data fetch cifar10`)."""
    split: Split = "train"
    """``train`` (50,000 images), ``test`` (10,000) or ``all`` (the 60,000 together)."""
    image_size: int = 32
    """The records are 32 x 32; another size resizes every image (bilinear, antialiased)."""
    max_images: int | None = None
    """Use only the first this many images of the split (file order); None uses all."""

    def __post_init__(self):
        if self.image_size < 4:
            raise ValueError(f"image_size must be at least 4 pixels, got {self.image_size}")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"max_images must be at least 1, got {self.max_images}")

    @property
    def label_kind(self) -> str:
        return self.record_format.labels[0]

    def list_classes(self) -> tuple[str, ...]:
        """The class names from the set's names file (no record is read); DataError when absent."""
        fmt = self.record_format
        return read_class_names(find_copy(self) / fmt.names_files[self.label_kind])


@dataclass(frozen=True)
class Cifar100Config(Cifar10Config):
    data_source: ClassVar[DataSource] = CIFAR100
    record_format: ClassVar[RecordFormat] = CIFAR100_FORMAT
    path: str = "cifar100"
    """The folder holding the record files (``train.bin``, ``test.bin``, the label names)."""
    labels: Literal["fine", "coarse"] = "fine"
    """Which labels the items carry: the 100 ``fine`` classes or the 20 ``coarse`` superclasses."""

    @property
    def label_kind(self) -> str:
        return self.labels


def find_copy(config: Cifar10Config) -> Path:
    """The folder of a complete copy (every record and names file present); DataError saying how to
    get one otherwise."""
    source, name = config.data_source, config.data_source.name
    path = str(config.path).strip()
    if not path:
        raise DataError(f"the {name} dataset needs a folder", hint="set data.path, or pass --data FOLDER")
    fetch = f"`ganforge data fetch {name}`"
    root = resolve_data_path(path, what=f"{name} folder", also=(datasets_dir(),),
                             hint=f"download it with {fetch} (or set GANFORGE_DATA to a folder holding "
                                  f"{path}/, or pass --data FOLDER)")
    if not root.is_dir():
        raise DataError(f"not a folder: {root} (expected the {name} record files)")
    missing = [f for f in source.files if not (root / f).is_file()]
    if missing:
        raise DataError(f"{root} is not a complete copy of {name}: {', '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} missing",
                        hint=f"fetch it with {fetch}, or point data.path at the folder holding every file")
    return root


def resize(images: Tensor, size: int, chunk: int = 2048) -> Tensor:
    """uint8 ``[N, 3, 32, 32]`` -> uint8 ``[N, 3, size, size]``: bilinear, antialiased when shrinking."""
    out = torch.empty((len(images), 3, size, size), dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        part = images[start: start + chunk].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False, antialias=size < SIDE)
        out[start: start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def build_cifar(config: Cifar10Config) -> Domains:
    fmt = config.record_format
    root = find_copy(config)
    kind = config.label_kind
    class_names = read_class_names(root / fmt.names_files[kind])
    images, labels, names = [], [], []
    for file in fmt.split_files(config.split):
        part, part_labels = read_records(root / file, fmt)
        check_labels(root / file, part_labels, fmt, kind, class_names)
        images.append(part)
        labels.append(part_labels[:, fmt.labels.index(kind)])
        names.extend(f"{file}#{i}" for i in range(len(part)))
    all_images, all_labels = torch.cat(images), torch.cat(labels).long()
    if config.max_images is not None:
        all_images, all_labels, names = all_images[: config.max_images], all_labels[: config.max_images], names[: config.max_images]
    if config.image_size != SIDE:
        all_images = resize(all_images, config.image_size)
    dataset = ImageTensorDataset(all_images, names, labels=all_labels, class_names=class_names,
                                 source=f"{root} ({config.split})")
    return {"images": dataset}
