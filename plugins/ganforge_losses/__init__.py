"""Built-in plugin: adversarial losses (LSGAN, vanilla/BCE, hinge, WGAN-GP), each with an optional
LeCam regulariser on the discriminator (``lecam`` = its weight, ``lecam_decay``)."""

from ganforge import hookimpl

from .losses import (
    HingeConfig,
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
    register("lsgan", build_lsgan, LSGANConfig, summary="Least-squares GAN loss (stable default); optional LeCam")
    register(
        "vanilla",
        build_vanilla,
        VanillaConfig,
        summary="Original GAN loss: BCE on logits, non-saturating generator loss; optional LeCam",
    )
    register("hinge", build_hinge, HingeConfig, summary="Hinge loss (SAGAN/BigGAN style); optional LeCam")
    register(
        "wgan-gp",
        build_wgan_gp,
        WGANGPConfig,
        summary="Wasserstein loss with gradient penalty (critic must not use batch norm); optional LeCam",
    )
