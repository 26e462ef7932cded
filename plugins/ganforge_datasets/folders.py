"""Datasets read from folders of image files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ganforge import DataError, datasets_dir, DataSource, Domains, load_image_folder, resolve_data_path

from .catalog import BUNDLED_ROOT, CYCLEGAN_SETS, GRUMPIFY_CATS, fetch_hint


@dataclass(frozen=True)
class ImageFolderConfig:
    path: str = ""
    """Folder of images: absolute, or relative to the current folder, $GANFORGE_DATA, the download cache
    (`ganforge data fetch`) or the datasets shipped with ganforge (e.g. grumpify-cats/grumpy)."""
    image_size: int = 64
    """Images are resized (shorter side) and center-cropped to this many pixels square."""
    max_images: int | None = None
    """Use only the first this many images (natural file-name order); None uses all."""


@dataclass(frozen=True)
class UnpairedFoldersConfig:
    path: str = ""
    """The folder holding both domain sub-folders (absolute, or relative like image-folder's path)."""
    domain_a: str = "a"
    """Sub-folder with the images of domain A."""
    domain_b: str = "b"
    """Sub-folder with the images of domain B."""
    image_size: int = 64


@dataclass(frozen=True)
class GrumpifyCatsConfig(UnpairedFoldersConfig):
    data_source: ClassVar[DataSource] = GRUMPIFY_CATS
    path: str = "grumpify-cats"
    domain_a: str = "russian_blue"
    domain_b: str = "grumpy"


@dataclass(frozen=True)
class Apple2OrangeConfig(UnpairedFoldersConfig):
    """apple2orange from $GANFORGE_DATA (apple/, orange/) or fetched (trainA/, trainB/): either works."""

    data_source: ClassVar[DataSource] = CYCLEGAN_SETS["apple2orange"]
    path: str = "apple2orange"
    domain_a: str = "apple"
    domain_b: str = "orange"


def cyclegan_set_config(source: DataSource) -> type:
    """The config of a fetchable CycleGAN set: domains trainA / trainB (testA / testB for the test split)."""
    cls = dataclass(frozen=True)(type(f"{source.name.title().replace('_', '')}Config", (UnpairedFoldersConfig,), {
        "__annotations__": {"data_source": ClassVar[DataSource], "path": str, "domain_a": str, "domain_b": str},
        "data_source": source, "path": source.name, "domain_a": "trainA", "domain_b": "trainB",
        "__module__": __name__,
    }))
    return cls


def find_data(path: str, what: str) -> Path:
    """Resolve a dataset path: as given, under $GANFORGE_DATA, in the download cache, then bundled."""
    return resolve_data_path(path, what=what, also=(datasets_dir(), BUNDLED_ROOT), hint=fetch_hint(path))


def _need_path(path: str, dataset: str) -> str:
    if not str(path).strip():
        raise DataError(f"the {dataset} dataset needs a folder",
                        hint="set data.path in the recipe, or pass --data FOLDER")
    return str(path).strip()


def build_image_folder(config: ImageFolderConfig) -> Domains:
    path = _need_path(config.path, "image-folder")
    folder = find_data(path, what="image folder")
    return {"images": load_image_folder(folder, config.image_size, max_images=config.max_images)}


def build_unpaired_folders(config: UnpairedFoldersConfig) -> Domains:
    path = _need_path(config.path, "unpaired")
    root = find_data(path, what="dataset folder")
    if not root.is_dir():
        raise DataError(f"not a folder: {root} (expected a folder holding the sub-folders "
                        f"'{config.domain_a}' and '{config.domain_b}')")
    domains = (config.domain_a, config.domain_b)
    source = getattr(config, "data_source", None)
    if source is not None:  # a known set stored in another of its layouts (fetched vs. hand-made copy)
        layouts = [tuple(layout) for layout in (source.layout, *source.alt_layouts) if len(layout) == 2]
        if domains in layouts and not all((root / d).is_dir() for d in domains):
            domains = next((lay for lay in layouts if all((root / d).is_dir() for d in lay)), domains)
    folders: dict[str, Path] = {}
    for key, option, sub in (("a", "domain_a", domains[0]), ("b", "domain_b", domains[1])):
        if not str(sub).strip():
            raise DataError(f"data.{option} is empty", hint="name the sub-folder holding that domain's images")
        folder = root / sub
        if not folder.is_dir():
            existing = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            has = ", ".join(existing) if existing else "none"
            raise DataError(
                f"domain {key.upper()} folder '{sub}' not found in {root} (sub-folders there: {has})",
                hint=f"set data.{option} to one of them",
            )
        folders[key] = folder
    return {key: load_image_folder(folder, config.image_size) for key, folder in folders.items()}
