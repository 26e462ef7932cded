"""Built-in plugin: the class-conditional GAN family.

A generator with conditional BatchNorm (or a label embedding joined to the noise), a projection
discriminator (Miyato & Koyama 2018), the ``labelled-folders`` dataset (one class per folder) and
the ``cgan`` algorithm. It is the reference for writing a labelled algorithm (see CONTRIBUTING.md).
"""

from ganforge import hookimpl

from .data import LabelledFoldersConfig, build_labelled_folders
from .models import (
    ConditionalGeneratorConfig,
    ProjectionDiscriminatorConfig,
    build_conditional_generator,
    build_projection_discriminator,
)


@hookimpl
def register_generators(register):
    register("cgan", build_conditional_generator, ConditionalGeneratorConfig,
             summary="Class-conditional generator: G(z, label), conditional BatchNorm or a label embedding")


@hookimpl
def register_discriminators(register):
    register("projection", build_projection_discriminator, ProjectionDiscriminatorConfig,
             summary="Projection discriminator (Miyato & Koyama 2018): D(x, label), spectral norm")


@hookimpl
def register_datasets(register):
    register("labelled-folders", build_labelled_folders, LabelledFoldersConfig,
             summary="Images labelled by folder: a root's sub-folders, or a list of folders, one class each")


@hookimpl
def register_algorithms(register):
    from .algorithm import CGANAlgorithm, CGANConfig

    register("cgan", CGANAlgorithm, CGANConfig,
             summary="Class-conditional GAN: labels to G and D, sample by class, optional EMA of G")


@hookimpl
def register_recipes(register):
    from ganforge import register_package_recipes

    register_package_recipes(register, __name__)
