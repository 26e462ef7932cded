"""Built-in plugin: pix2pix (U-Net generator, conditional PatchGAN, L1 + adversarial) and paired data.

Datasets: ``paired-side-by-side`` (A|B images, as the pix2pix datasets ship), ``paired-folders`` (two
folders matched by file name) and ``edges`` (any photo folder paired with its Canny edge maps).
"""

from ganforge import hookimpl

# Modules are imported inside the hooks, so `python -m ganforge_pix2pix.edges` runs its module once.


@hookimpl
def register_generators(register):
    from .models import UNetGeneratorConfig, build_unet_generator

    register("unet", build_unet_generator, UNetGeneratorConfig,
             summary="pix2pix U-Net image-to-image generator: skip connections, dropout")


@hookimpl
def register_discriminators(register):
    from .models import PairPatchGANConfig, build_pair_patchgan

    register("patchgan-pair", build_pair_patchgan, PairPatchGANConfig,
             summary="Conditional 70x70 PatchGAN on (input, output) pairs, 6 channels in")


@hookimpl
def register_datasets(register):
    from .data import EdgesConfig, PairedFoldersConfig, SideBySideConfig, build_edges, build_paired_folders, build_side_by_side

    register("paired-side-by-side", build_side_by_side, SideBySideConfig,
             summary="A folder of A|B images (input and target side by side) -> domain 'pairs'")
    register("paired-folders", build_paired_folders, PairedFoldersConfig,
             summary="Two sub-folders of images matched by file name -> domain 'pairs'")
    register("edges", build_edges, EdgesConfig,
             summary="Any photo folder, each photo paired with its edge map (Canny in torch) -> domain 'pairs'")


@hookimpl
def register_algorithms(register):
    from .algorithm import Pix2PixAlgorithm, Pix2PixConfig

    register("pix2pix", Pix2PixAlgorithm, Pix2PixConfig,
             summary="pix2pix: paired translation, conditional D on (input, output), L1 x 100")


@hookimpl
def register_recipes(register):
    from ganforge import register_package_recipes

    register_package_recipes(register, __name__)
