"""Built-in plugin: adversarial losses (LSGAN, vanilla/BCE, hinge, WGAN-GP)."""

from ganforge import hookimpl

from .losses import (
    LSGANConfig,
    VanillaConfig,
    WGANGPConfig,
    build_hinge,
    build_lsgan,
    build_vanilla,
    build_wgan_gp,
)


@hookimpl
def register_losses(register):
    register("lsgan", build_lsgan, LSGANConfig, summary="Least-squares GAN loss (stable default)")
    register(
        "vanilla",
        build_vanilla,
        VanillaConfig,
        summary="Original GAN loss: BCE on logits, non-saturating generator loss",
    )
    register("hinge", build_hinge, None, summary="Hinge loss (SAGAN/BigGAN style)")
    register(
        "wgan-gp",
        build_wgan_gp,
        WGANGPConfig,
        summary="Wasserstein loss with gradient penalty (critic must not use batch norm)",
    )
