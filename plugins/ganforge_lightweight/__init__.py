"""Built-in plugin: the lightweight (FastGAN-style) family: skip-layer excitation and a self-supervised discriminator."""

from ganforge import hookimpl

from .models import (
    LightweightDiscriminatorConfig,
    LightweightGeneratorConfig,
    build_lightweight_discriminator,
    build_lightweight_generator,
)


@hookimpl
def register_generators(register):
    register(
        "lightweight",
        build_lightweight_generator,
        LightweightGeneratorConfig,
        summary="FastGAN generator: GLU upsampling blocks, noise injection, skip-layer excitation; 32-256px",
    )


@hookimpl
def register_discriminators(register):
    register(
        "lightweight",
        build_lightweight_discriminator,
        LightweightDiscriminatorConfig,
        summary="FastGAN discriminator: two-branch down blocks, 5x5 patch logits, decoders for self-supervision",
    )


@hookimpl
def register_algorithms(register):
    from .algorithm import LightweightAlgorithm, LightweightConfig

    register(
        "lightweight",
        LightweightAlgorithm,
        LightweightConfig,
        summary="FastGAN training: adversarial loss + D's reconstruction of real images (pixel loss), EMA of G",
    )


@hookimpl
def register_recipes(register):
    from ganforge import register_package_recipes

    register_package_recipes(register, __name__)
