"""Built-in datasets: image folders, unpaired two-domain folders (with presets for the bundled
example data) and ``shapes``, a procedural dataset that needs no files."""

from __future__ import annotations

from ganforge import hookimpl

from .folders import (
    Apple2OrangeConfig,
    GrumpifyCatsConfig,
    ImageFolderConfig,
    UnpairedFoldersConfig,
    build_image_folder,
    build_unpaired_folders,
)
from .shapes import SHAPES, ShapesConfig, build_shapes

__all__ = [
    "Apple2OrangeConfig",
    "GrumpifyCatsConfig",
    "ImageFolderConfig",
    "SHAPES",
    "ShapesConfig",
    "UnpairedFoldersConfig",
    "build_image_folder",
    "build_shapes",
    "build_unpaired_folders",
    "register_datasets",
]


@hookimpl
def register_datasets(register):
    register("image-folder", build_image_folder, ImageFolderConfig,
             summary="A folder of images (searched recursively) -> domain 'images'")
    register("unpaired-folders", build_unpaired_folders, UnpairedFoldersConfig,
             summary="Two sub-folders of unpaired images -> domains 'a' and 'b'")
    register("grumpify-cats", build_unpaired_folders, GrumpifyCatsConfig,
             summary="Russian Blue (a) and Grumpy Cat (b) faces, 64x64, from the data root")
    register("apple2orange", build_unpaired_folders, Apple2OrangeConfig,
             summary="Apples (a) and oranges (b), 64x64, from the data root")
    register("shapes", build_shapes, ShapesConfig,
             summary="Procedural coloured shapes; needs no files (a first run that works anywhere)")
