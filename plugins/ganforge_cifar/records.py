"""Reading the binary CIFAR record files straight into tensors.

A record file is a sequence of fixed-size records, with no header:

- CIFAR-10 (``data_batch_1.bin`` ... ``data_batch_5.bin``, ``test_batch.bin``): one label byte,
  then 3,072 pixel bytes;
- CIFAR-100 (``train.bin``, ``test.bin``): two label bytes (coarse, then fine), then 3,072 pixel
  bytes.

The pixels are the red plane, then the green, then the blue, each 1,024 bytes of a 32 x 32 image in
row-major order, which is exactly a ``[3, 32, 32]`` uint8 tensor. A whole file is read with
``np.frombuffer`` and reshaped, so 60,000 images load in well under a second, and nothing is ever
unpickled. The class names are text files, one name per line (``batches.meta.txt``;
``coarse_label_names.txt`` / ``fine_label_names.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganforge import DataError

SIDE = 32
PIXELS = 3 * SIDE * SIDE  # 3,072 bytes: R plane, G plane, B plane


@dataclass(frozen=True)
class RecordFormat:
    """How one CIFAR distribution lays out its records and files."""

    name: str
    label_bytes: int
    """Label bytes before the pixels of each record."""
    labels: tuple[str, ...]
    """What each label byte is, in order (``("label",)``, ``("coarse", "fine")``)."""
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    names_files: dict
    """label kind -> the text file naming its classes, one per line."""

    @property
    def record_size(self) -> int:
        return self.label_bytes + PIXELS

    def split_files(self, split: str) -> tuple[str, ...]:
        return {"train": self.train_files, "test": self.test_files,
                "all": self.train_files + self.test_files}[split]


CIFAR10_FORMAT = RecordFormat(
    "cifar10", 1, ("label",),
    train_files=tuple(f"data_batch_{i}.bin" for i in range(1, 6)), test_files=("test_batch.bin",),
    names_files={"label": "batches.meta.txt"},
)
CIFAR100_FORMAT = RecordFormat(
    "cifar100", 2, ("coarse", "fine"),
    train_files=("train.bin",), test_files=("test.bin",),
    names_files={"coarse": "coarse_label_names.txt", "fine": "fine_label_names.txt"},
)


def read_class_names(path: Path) -> tuple[str, ...]:
    """The class names of a names file: one per line, blank lines ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path} is missing (the file naming the classes)",
                        hint="the copy is incomplete: fetch it again with `ganforge data fetch`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the class names in {path}: {exc}") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise DataError(f"{path} names no classes (it is empty)",
                        hint="the copy is damaged: fetch it again with `ganforge data fetch`")
    if len(set(names)) != len(names):
        raise DataError(f"{path} names a class twice", hint="the copy is damaged: fetch it again")
    return names


def read_records(path: Path, fmt: RecordFormat) -> tuple[Tensor, Tensor]:
    """``(images uint8 [N, 3, 32, 32], labels uint8 [N, label_bytes])`` of one record file.

    A file that is not a whole number of records (a truncated download, another file of the same
    name) raises DataError naming it, its size and the record size.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} is missing", hint="the copy is incomplete: fetch it again with `ganforge data fetch`") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    size = fmt.record_size
    whole, extra = divmod(len(data), size)
    if extra or not whole:
        what = "is empty" if not data else (f"is {len(data):,} bytes: {whole:,} whole {size:,}-byte records and "
                                            f"{extra:,} bytes over (a truncated or wrong file)")
        raise DataError(f"{path} {what}", hint=f"each {fmt.name} record is {fmt.label_bytes} label byte(s) + "
                        f"{PIXELS:,} pixel bytes; fetch the set again with `ganforge data fetch {fmt.name} --force`")
    records = np.frombuffer(data, dtype=np.uint8).reshape(whole, size)
    labels = torch.from_numpy(np.ascontiguousarray(records[:, : fmt.label_bytes]))
    images = torch.from_numpy(np.ascontiguousarray(records[:, fmt.label_bytes:])).view(whole, 3, SIDE, SIDE)
    return images, labels


def check_labels(path: Path, labels: Tensor, fmt: RecordFormat, kind: str, names: tuple[str, ...]) -> None:
    """Every ``kind`` label of a file's records names one of ``names``; else DataError naming the record."""
    values = labels[:, fmt.labels.index(kind)]
    bad = (values >= len(names)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{path}: record {i} has {kind} label {int(values[i])}, but {fmt.names_files[kind]} names "
                        f"{len(names)} classes (a damaged or wrong file)",
                        hint=f"fetch the set again with `ganforge data fetch {fmt.name} --force`")


def verify(folder: Path, fmt: RecordFormat) -> None:
    """Check a copy's files: every record file whole, every label one of its names file's classes.
    Raises DataError naming the first bad file (``DataSource.verify``)."""
    names = {kind: read_class_names(folder / file) for kind, file in fmt.names_files.items()}
    for file in fmt.train_files + fmt.test_files:
        _, labels = read_records(folder / file, fmt)
        for kind in fmt.labels:
            check_labels(folder / file, labels, fmt, kind, names[kind])


def verify_cifar10(folder: Path) -> None:
    verify(Path(folder), CIFAR10_FORMAT)


def verify_cifar100(folder: Path) -> None:
    verify(Path(folder), CIFAR100_FORMAT)
