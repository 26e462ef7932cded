"""Writing many generated images without holding them all: `ganforge sample` and `ganforge translate`.

Samples are generated and written in chunks of at most :data:`CHUNK_BYTES` of float images, so memory
stays flat whatever ``--num`` is. The grid is the first chunk (at most :data:`MAX_GRID_ITEMS` samples,
fewer for large images); more samples must go to ``--individual`` files, and a request that cannot be
written (a grid too large, more files than the disk holds, a count or seed out of range) is refused
before any sampling, with what to do instead. Folders of input images are walked lazily, one folder
listing at a time, so translating a folder of any size holds one image in memory.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from ganforge.core.errors import DataError, GanforgeError
from ganforge.data.images import grid_size, is_image_file, natural_key, read_image, save_image_grid, save_pil_atomic
from ganforge.data.images import tensor_to_pil, to_float, to_tensor

MAX_GRID_ITEMS = 1024
"""The most samples one grid image shows (a 32 x 32 grid)."""
CHUNK_BYTES = 64 * 2**20
"""Float images generated at once; also bounds the grid (it is the first chunk)."""
MAX_NUM = 1_000_000
"""The most samples one command writes (as files into one folder)."""
MAX_SIDE = {".png": 2**31 - 1, ".jpg": 65535, ".jpeg": 65535, ".webp": 16383}
"""The largest width or height each output format can store."""
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts


# --- checks before any work ----------------------------------------------------------------------
def check_request(num: int, seed: int, output: Path, individual: Path | None) -> None:
    """Refuse counts, seeds and file names that cannot be written, before the checkpoint is even loaded."""
    if num <= 0:
        raise GanforgeError(f"--num must be a positive integer, got {num}")
    if num > MAX_NUM:
        raise GanforgeError(
            f"--num {num:,} is more than one command writes (at most {MAX_NUM:,})",
            hint="run it several times with different --seed values and --individual folders",
        )
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise GanforgeError(f"--seed must be between {SEED_RANGE[0]} and {SEED_RANGE[1]}, got {seed}")
    if output.suffix.lower() not in MAX_SIDE:
        raise GanforgeError(f"--output must be an image file name (.png, .jpg or .webp), got {output}")
    if num > MAX_GRID_ITEMS and individual is None:
        raise _too_many_for_grid(num, MAX_GRID_ITEMS, "")


def _too_many_for_grid(num: int, most: int, what: str) -> GanforgeError:
    return GanforgeError(
        f"--num {num:,} is more than one grid image shows (at most {most:,}{what})",
        hint=f"add --individual FOLDER to write every sample as its own file (the grid then shows the first "
        f"{most:,}), or lower --num",
    )


# --- where image-to-image samples come from ------------------------------------------------------
def iter_image_files(folder: Path, exclude: Path | None = None) -> Iterator[Path]:
    """Image files under ``folder`` in the order :func:`ganforge.data.images.list_images` gives, found lazily:
    only one folder's names are held at a time. Hidden entries are skipped, symlinked folders followed
    once, and ``exclude`` (e.g. an output folder inside the input) is not entered."""
    seen: set[str] = set()
    skip = os.path.realpath(exclude) if exclude is not None else None

    def walk(path: str) -> Iterator[Path]:
        real = os.path.realpath(path)
        if real in seen or real == skip:
            return
        seen.add(real)
        try:
            with os.scandir(path) as it:
                entries = []
                for e in it:
                    if e.name.startswith("."):
                        continue
                    try:
                        is_dir = e.is_dir()
                    except OSError:
                        continue
                    if is_dir or is_image_file(e.name):
                        entries.append((natural_key(e.name), e.path, is_dir))
        except OSError:
            return
        entries.sort(key=lambda item: item[0])
        for _, entry, is_dir in entries:
            if is_dir:
                yield from walk(entry)
            else:
                yield Path(entry)

    return walk(str(folder))


@dataclass
class ImageSource:
    """Source images for an image-to-image algorithm, handed out a chunk at a time."""

    size: int
    files: Iterator[Path] | None = None
    domains: dict | None = None
    skipped: list[str] = field(default_factory=list)
    _taken: int = 0
    _buffer: list[Tensor] = field(default_factory=list)

    @classmethod
    def from_path(cls, path: Path, size: int) -> ImageSource:
        """The user's images (a file, or a folder walked lazily), resized to the model's ``size``."""
        if not path.exists():
            raise GanforgeError(f"--input not found: {path}")
        return cls(size, files=iter_image_files(path) if path.is_dir() else iter([path]))

    @classmethod
    def from_data(cls, part, registry) -> ImageSource:
        """The recipe's dataset (``[data]``), domain by domain."""
        return cls(0, domains=registry.get("dataset", part.name).build(part.config))

    def _fill(self, n: int) -> None:
        while len(self._buffer) < n:
            path = next(self.files, None)
            if path is None:
                return
            try:
                self._buffer.append(to_tensor(read_image(path), self.size))
            except DataError as exc:
                self.skipped.append(exc.message)

    def take(self, n: int, peek: bool = False) -> dict[str, Tensor] | None:
        if self.domains is not None:
            lo = self._taken
            hi = min(lo + n, *(len(ds) for ds in self.domains.values()))
            if hi <= lo:
                return None
            if not peek:
                self._taken = hi
            from ganforge.data.items import fetch_fields

            idx = torch.arange(lo, hi)
            return {d: fetch_fields(ds, idx)["image"] for d, ds in self.domains.items()}
        self._fill(n)
        chunk = self._buffer[:n]
        if not peek:
            del self._buffer[:n]
        if not chunk:
            return None
        return {"input": to_float(torch.stack(chunk))}


# --- generating and writing ----------------------------------------------------------------------
@dataclass
class Written:
    grid: int  # images in the grid
    files: int  # images written to --individual
    chunk: int  # samples generated at once
    skipped: list[str]  # unreadable input images


def chunk_seed(seed: int, index: int) -> int:
    """The noise seed of chunk ``index``: ``seed`` itself for the first, so a grid that fits in one
    chunk is exactly what one call with ``seed`` gives; independent streams for the others."""
    if index == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed % 2**64, index]).generate_state(1, np.uint64)[0] >> 1)


def write_samples(draw, *, num: int, seed: int, output: Path, individual: Path | None,
                  source: ImageSource | None = None, console=None) -> Written:
    """Generate ``num`` samples in chunks with ``draw(n, seed, inputs) -> (images, grid columns)``; write
    the first chunk as the grid ``output`` and, with ``individual``, every image as its own PNG.
    Peak memory: about 2.5 x :data:`CHUNK_BYTES` over the model's, whatever ``num`` is."""
    # A few samples first, to learn the images' size and how many come per sample, before any real work.
    probe_n = min(num, 16)
    probe_in = source.take(probe_n, peek=True) if source is not None else None
    if source is not None and probe_in is None:
        raise DataError("no readable images among the source images" + (f" ({source.skipped[0]})" if source.skipped else ""))
    if probe_in is not None:
        probe_n = min(probe_n, *(len(v) for v in probe_in.values()))
    probe, _ = draw(probe_n, seed, probe_in)
    per = max(len(probe), 1) / probe_n  # images per sample (e.g. 6 for source | translation | reconstruction x 2)
    _, _, h, w = probe.shape
    chunk = max(1, min(MAX_GRID_ITEMS, int(CHUNK_BYTES // (per * probe[0].numel() * 4))))
    del probe, probe_in
    if num > chunk and individual is None:
        raise _too_many_for_grid(num, chunk, f" of {w}x{h} for this checkpoint")
    total = math.ceil(num * per)
    if individual is not None:
        _check_space(individual, total, h * w * 3)
    width = max(4, len(str(math.ceil(num * max(per, 1.0)) - 1)))  # an upper bound on the files written

    show = console is not None and console.is_terminal and num > chunk
    progress = None
    if show:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("[bold]sample[/bold]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=console, transient=True)
        task = progress.add_task("sample", total=num)
        progress.start()
    grid = written = done = 0
    try:
        index = 0
        while done < num:
            n = min(chunk, num - done)
            inputs = source.take(n) if source is not None else None
            if source is not None and inputs is None:
                break
            images, nrow = draw(n, chunk_seed(seed, index), inputs)
            images = images.detach().float().cpu()
            if index == 0:
                _check_grid(output, len(images), h, w, nrow)
                output.parent.mkdir(parents=True, exist_ok=True)
                save_image_grid(images, output, nrow=nrow)
                grid = len(images)
                if individual is not None:
                    individual.mkdir(parents=True, exist_ok=True)
            if individual is not None:
                for img in images:
                    save_pil_atomic(tensor_to_pil(img), individual / f"sample-{written:0{width}d}.png")
                    written += 1
            del images, inputs
            done += n
            index += 1
            if progress is not None:
                progress.update(task, completed=done)
    finally:
        if progress is not None:
            progress.stop()
    return Written(grid=grid, files=written, chunk=chunk, skipped=list(source.skipped) if source else [])


def _check_grid(output: Path, count: int, h: int, w: int, nrow: int) -> None:
    gw, gh = grid_size(count, h, w, nrow)
    most = MAX_SIDE[output.suffix.lower()]
    if max(gw, gh) > most:
        raise GanforgeError(
            f"a grid of {count} images is {gw}x{gh} pixels, more than {output.suffix} stores ({most} per side)",
            hint="write a .png, or lower --num",
        )


def _check_space(folder: Path, images: int, raw_bytes: int) -> None:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    need = images * (raw_bytes + 1024)  # a PNG of generated images is at most about its raw size
    free = shutil.disk_usage(probe).free
    if need > free:
        raise GanforgeError(
            f"{images:,} images need up to {need / 2**20:,.0f} MiB in {folder}, but only {free / 2**20:,.0f} MiB "
            "are free",
            hint="lower --num or choose another --individual folder",
        )
