"""Datasets read from folders of image files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ganforge.data import Domains, load_image_folder, resolve_data_path
from ganforge.errors import DataError


@dataclass(frozen=True)
class ImageFolderConfig:
    path: str = ""
    """Folder of images: absolute, relative to the current folder, or relative to $GANFORGE_DATA."""
    image_size: int = 64
    """Images are resized (shorter side) and center-cropped to this many pixels square."""
    max_images: int | None = None
    """Use only the first this many images (natural file-name order); None uses all."""


@dataclass(frozen=True)
class UnpairedFoldersConfig:
    path: str = ""
    """The folder holding both domain sub-folders (absolute, or relative to $GANFORGE_DATA)."""
    domain_a: str = "a"
    """Sub-folder with the images of domain A."""
    domain_b: str = "b"
    """Sub-folder with the images of domain B."""
    image_size: int = 64


@dataclass(frozen=True)
class GrumpifyCatsConfig(UnpairedFoldersConfig):
    path: str = "grumpify-cats"
    domain_a: str = "russian_blue"
    domain_b: str = "grumpy"


@dataclass(frozen=True)
class Apple2OrangeConfig(UnpairedFoldersConfig):
    path: str = "apple2orange"
    domain_a: str = "apple"
    domain_b: str = "orange"


def _need_path(path: str, dataset: str) -> str:
    if not str(path).strip():
        raise DataError(f"the {dataset} dataset needs a folder",
                        hint="set data.path in the recipe, or pass --data FOLDER")
    return str(path).strip()


def build_image_folder(config: ImageFolderConfig) -> Domains:
    path = _need_path(config.path, "image-folder")
    folder = resolve_data_path(path, what="image folder")
    return {"images": load_image_folder(folder, config.image_size, max_images=config.max_images)}


def build_unpaired_folders(config: UnpairedFoldersConfig) -> Domains:
    path = _need_path(config.path, "unpaired")
    root = resolve_data_path(path, what="dataset folder")
    if not root.is_dir():
        raise DataError(f"not a folder: {root} (expected a folder holding the sub-folders "
                        f"'{config.domain_a}' and '{config.domain_b}')")
    folders: dict[str, Path] = {}
    for key, option, sub in (("a", "domain_a", config.domain_a), ("b", "domain_b", config.domain_b)):
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
