"""Built-in plugin: the StyleGAN2 family (mapping network, modulated convolutions, R1, EMA, truncation).

Pure PyTorch (no custom CUDA ops): runs on CPU, CUDA and MPS. Registers the ``stylegan2`` generator,
discriminator and algorithm, and the recipes ``stylegan2-cats`` (64 px, sized for a CPU) and
``stylegan2-cats-128`` (128 px, for a GPU)."""

from ganforge import hookimpl

from .models import (
    StyleGAN2DiscriminatorConfig,
    StyleGAN2GeneratorConfig,
    build_stylegan2_discriminator,
    build_stylegan2_generator,
)


@hookimpl
def register_generators(register):
    register(
        "stylegan2",
        build_stylegan2_generator,
        StyleGAN2GeneratorConfig,
        summary="StyleGAN2 generator: mapping network, modulated/demodulated convs, noise, skip RGB outputs, w_avg",
    )


@hookimpl
def register_discriminators(register):
    register(
        "stylegan2",
        build_stylegan2_discriminator,
        StyleGAN2DiscriminatorConfig,
        summary="StyleGAN2 discriminator: residual blocks, minibatch stddev, one logit per image",
    )


@hookimpl
def register_algorithms(register):
    from .algorithm import StyleGAN2Algorithm, StyleGAN2Config

    register(
        "stylegan2",
        StyleGAN2Algorithm,
        StyleGAN2Config,
        summary="StyleGAN2 training: lazy R1, optional path-length reg., style mixing, EMA of G, truncation",
    )


@hookimpl
def register_recipes(register):
    from ganforge import register_package_recipes

    register_package_recipes(register, __name__)
