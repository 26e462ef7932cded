"""Built-in plugin: SAGAN networks (self-attention at a chosen resolution, spectral norm in G and D).

Trained by the ``gan`` algorithm of the dcgan plugin with the hinge loss and two time-scale learning
rates (recipe ``sagan-cats``)."""

from ganforge import hookimpl

from .models import SAGANDiscriminatorConfig, SAGANGeneratorConfig, build_sagan_discriminator, build_sagan_generator


@hookimpl
def register_generators(register):
    register("sagan", build_sagan_generator, SAGANGeneratorConfig,
             summary="SAGAN generator: self-attention at a chosen resolution, spectral norm")


@hookimpl
def register_discriminators(register):
    register("sagan", build_sagan_discriminator, SAGANDiscriminatorConfig,
             summary="SAGAN discriminator: self-attention at a chosen resolution, spectral norm, no norm layers")


@hookimpl
def register_recipes(register):
    from ganforge import register_package_recipes

    register_package_recipes(register, __name__)
