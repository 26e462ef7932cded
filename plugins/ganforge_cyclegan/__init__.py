"""Built-in plugin: CycleGAN (ResNet generator, PatchGAN discriminator)."""

from ganforge import hookimpl

from .models import (
    PatchGANDiscriminatorConfig,
    ResnetGeneratorConfig,
    build_patchgan_discriminator,
    build_resnet_generator,
)


# --------------------------------------------------------------------------- networks


@hookimpl
def register_generators(register):
    register(
        "resnet",
        build_resnet_generator,
        ResnetGeneratorConfig,
        summary="CycleGAN ResNet image-to-image generator (any input size)",
    )


@hookimpl
def register_discriminators(register):
    register(
        "patchgan",
        build_patchgan_discriminator,
        PatchGANDiscriminatorConfig,
        summary="PatchGAN discriminator: a grid of patch logits (78px receptive field by default)",
    )


# --------------------------------------------------------------------------- algorithms & recipes
@hookimpl
def register_algorithms(register):
    from .algorithm import CycleGANAlgorithm, CycleGANConfig

    register("cyclegan", CycleGANAlgorithm, CycleGANConfig,
             summary="CycleGAN: two generators, two discriminators, cycle + identity L1, image pool")


@hookimpl
def register_recipes(register):
    from ganforge import register_package_recipes

    register_package_recipes(register, __name__)
