"""Built-in datasets: image folders, unpaired two-domain folders, the grumpify-cats faces shipped
with this package, the public CycleGAN and pix2pix sets (``ganforge data fetch NAME`` downloads them
into the cache) and ``shapes``, a procedural dataset that needs no files."""

from __future__ import annotations

from ganforge import hookimpl

from .catalog import BUNDLED_ROOT, CYCLEGAN_SETS, PIX2PIX_SETS
from .folders import (
    Apple2OrangeConfig,
    GrumpifyCatsConfig,
    ImageFolderConfig,
    UnpairedFoldersConfig,
    build_image_folder,
    build_unpaired_folders,
    cyclegan_set_config,
)
from .paired import PAIRED_CONFIGS, PairedConfig, build_paired
from .shapes import SHAPES, ShapesConfig, build_shapes

__all__ = [
    "Apple2OrangeConfig",
    "BUNDLED_ROOT",
    "PairedConfig",
    "build_paired",
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
             summary="Russian Blue (a) and Grumpy Cat (b) faces, 64x64 (shipped with ganforge)")
    register("apple2orange", build_unpaired_folders, Apple2OrangeConfig,
             summary="Apples (a) and oranges (b) (`ganforge data fetch apple2orange`)")
    for name, source in CYCLEGAN_SETS.items():
        if name != "apple2orange":
            register(name, build_unpaired_folders, cyclegan_set_config(source),
                     summary=f"{source.summary} (`ganforge data fetch {name}`)")
    for name, source in PIX2PIX_SETS.items():
        register(name, build_paired, PAIRED_CONFIGS[name],
                 summary=f"pix2pix {source.summary}: a = left, b = right, pairs = left -> right (`ganforge data fetch {name}`)")
    register("shapes", build_shapes, ShapesConfig,
             summary="Procedural coloured shapes; needs no files (a first run that works anywhere)")
