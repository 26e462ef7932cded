"""Built-in plugin: the DCGAN generator and discriminator, and the DCGAN, WGAN-GP recipes (trained
with the ``gan`` algorithm of the ``gan`` plugin)."""

from ganforge import hookimpl

from .models import (
    DCGANDiscriminatorConfig,
    DCGANGeneratorConfig,
    build_dcgan_discriminator,
    build_dcgan_generator,
)


@hookimpl
def register_generators(register):
    register(
        "dcgan",
        build_dcgan_generator,
        DCGANGeneratorConfig,
        summary="DCGAN generator: noise -> 32/64/128px image via 2x upsampling blocks",
    )


@hookimpl
def register_discriminators(register):
    register(
        "dcgan",
        build_dcgan_discriminator,
        DCGANDiscriminatorConfig,
        summary="DCGAN discriminator: strided 4x4 convs down to one logit per image",
    )


@hookimpl
def register_recipes(register):
    from ganforge import register_package_recipes

    register_package_recipes(register, __name__)
