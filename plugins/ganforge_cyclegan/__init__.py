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
# register_algorithms / register_recipes go here.
