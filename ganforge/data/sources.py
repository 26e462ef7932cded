"""Where datasets live: the data root, the download cache, and copies bundled with a plugin.

A dataset plugin describes the data behind a registered dataset with a :class:`DataSource`, set as
the class attribute ``data_source`` of the dataset's config dataclass (a ``ClassVar``, so it is not
a recipe key)::

    @dataclass(frozen=True)
    class Horse2ZebraConfig(UnpairedFoldersConfig):
        data_source: ClassVar[DataSource] = DataSource("horse2zebra", "download", url=..., archive="zip",
                                                       layout=("trainA", "trainB"))
        path: str = "horse2zebra"

A relative dataset path (``data.path = "horse2zebra"``) is looked for, in order: in the current
folder, under ``$GANFORGE_DATA``, in the download cache (``$GANFORGE_CACHE/datasets``, default
``~/.cache/ganforge/datasets``) and in the bundled copies. ``ganforge data list`` shows the result
for every registered dataset and ``ganforge data fetch NAME`` fills the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from ganforge.core.files import CACHE_ENV, cache_dir  # noqa: F401 - part of this module's API
from ganforge.data.folders import data_root
from ganforge.data.images import IMAGE_SUFFIXES

MANIFEST = ".ganforge-source.json"
"""Written into every fetched dataset folder: where it came from, its archive's sha256 and size."""


@dataclass(frozen=True)
class DataSource:
    """Where the files of a dataset come from (see the module documentation)."""

    name: str
    """The folder name under a data root, the cache or the bundled copies."""
    kind: Literal["bundled", "download", "generated"]
    summary: str = ""
    url: str | None = None
    """Download: the archive's URL."""
    archive: Literal["zip", "tar.gz"] | None = None
    sha256: str | None = None
    """Download: the archive's SHA-256 where it is known (checked before anything is extracted)."""
    md5: str | None = None
    """Download: the archive's MD5 where its publisher gives one (some publish no SHA-256); checked
    like the SHA-256. It catches a damaged or wrong file, though it is no guard against a forged one."""
    size: int | None = None
    """Download: the archive's approximate size in bytes (shown before downloading)."""
    layout: tuple[str, ...] = ()
    """Sub-folders a complete copy holds, each with images (e.g. ``("trainA", "trainB")``)."""
    files: tuple[str, ...] = ()
    """Files a complete copy holds, relative to its folder, for a set shipped as data files rather
    than images (e.g. ``("data_batch_1.bin", "batches.meta.txt")``). A source may name both
    ``layout`` and ``files``; a copy is complete when it has all of them."""
    verify: Any = None
    """Optional ``verify(folder)``: checks the files of a copy and raises ``DataError`` naming the
    first damaged one (a truncated record file, a wrong size). ``ganforge data fetch`` runs it on
    the extracted copy before it is moved into place, so a damaged archive installs nothing."""
    alt_layouts: tuple[tuple[str, ...], ...] = ()
    """Other accepted layouts of a copy under ``$GANFORGE_DATA`` (e.g. ``("apple", "orange")``)."""
    bundled: Any = None
    """Bundled: the folder holding the copy shipped with the plugin (a ``Path``)."""
    family: str = ""
    """A label for listings (``cyclegan``, ``pix2pix``)."""


def datasets_dir() -> Path:
    """The folder fetched datasets are extracted into (one sub-folder per dataset)."""
    return cache_dir() / "datasets"


def search_roots(extra: Iterable[Path] = ()) -> list[tuple[str, Path]]:
    """``(label, folder)`` where relative dataset paths are looked for after the current folder."""
    roots: list[tuple[str, Path]] = []
    root = data_root()
    if root is not None:
        roots.append(("$GANFORGE_DATA", root))
    roots.append(("cache", datasets_dir()))
    roots.extend(("bundled", Path(p)) for p in extra)
    return roots


def has_layout(folder: Path, layout: Iterable[str]) -> bool:
    """Whether every sub-folder of ``layout`` exists in ``folder`` and holds at least one image."""
    for sub in layout:
        d = folder / sub
        if not d.is_dir() or not any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()):
            return False
    return True


def has_files(folder: Path, files: Iterable[str]) -> bool:
    """Whether every file of ``files`` (paths relative to ``folder``) exists in ``folder``."""
    return all((folder / name).is_file() for name in files)


def complete(source: DataSource, folder: Path) -> bool:
    """Whether ``folder`` is a complete copy of ``source``: it has one of the source's layouts (when
    it names any) and every one of its ``files``."""
    if not folder.is_dir():
        return False
    if not has_files(folder, source.files):
        return False
    layouts = [layout for layout in (source.layout, *source.alt_layouts) if layout]
    return not layouts or any(has_layout(folder, layout) for layout in layouts)


def describe_contents(source: DataSource) -> str:
    """What a complete copy of ``source`` holds, for messages: ``the folders trainA/, trainB/ with
    images``, ``the files data_batch_1.bin, ...``, or both."""
    parts = []
    if source.layout:
        parts.append("the folders " + ", ".join(f"{d}/" for d in source.layout) + " with images")
    if source.files:
        parts.append("the files " + ", ".join(source.files))
    return " and ".join(parts) or "its files"


@dataclass(frozen=True)
class Located:
    source: DataSource
    path: Path | None
    """The folder used when a recipe names the dataset (``None`` when it is not present)."""
    where: str
    """``$GANFORGE_DATA``, ``cache``, ``bundled`` or ``""``."""
    looked: tuple[Path, ...]


def locate(source: DataSource) -> Located:
    """Find the first complete copy of ``source`` (data root, then cache, then bundled copy)."""
    extra = [Path(source.bundled)] if source.bundled is not None else []
    looked = []
    for label, root in search_roots(extra):
        folder = root / source.name if label != "bundled" else Path(root)
        looked.append(folder)
        if complete(source, folder):
            return Located(source, folder, label, tuple(looked))
    return Located(source, None, "", tuple(looked))


def folder_size(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.stat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover
