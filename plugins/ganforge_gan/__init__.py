"""Built-in plugin: the generic noise-to-image ``gan`` algorithm (alternating D/G updates, TTUR,
``d_steps``, optional EMA of G). DCGAN, SAGAN and WGAN-GP recipes train with it; ``cgan``,
``lightweight`` and ``stylegan2`` extend it."""

from ganforge import hookimpl

from .algorithm import GANAlgorithm, GANConfig

__all__ = ["GANAlgorithm", "GANConfig"]


@hookimpl
def register_algorithms(register):
    register("gan", GANAlgorithm, GANConfig, summary="Unconditional GAN: alternating D/G updates, TTUR, optional EMA of G")
