"""ganforge-extras: an example third-party ganforge plugin.

Installed, it is found through the ``ganforge`` entry-point group (``extras = "ganforge_extras"``
in its pyproject.toml) and adds:

- augmentation ``noise``: Gaussian instance noise on every discriminator input;
- loss ``relativistic``: relativistic average LSGAN / standard GAN;
- generator ``tiny-mlp``: a small fully connected noise-to-image generator;
- recipe ``shapes-mlp``: ``tiny-mlp`` + ``relativistic`` + ``noise`` on the embedded shapes.

Every hook only calls ``register``: nothing is built until a recipe asks for it, so loading the
plugin (which ``ganforge plugins`` and every command do) stays cheap.
"""

from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files

from ganforge import hookimpl

from .noise import InstanceNoise, NoiseConfig, build_noise
from .relativistic import RelativisticAverageLoss, RelativisticConfig, build_relativistic
from .tiny_mlp import TinyMLPConfig, TinyMLPGenerator, build_tiny_mlp

try:
    __version__ = version("ganforge-extras")
except PackageNotFoundError:  # imported from a source tree without an install
    __version__ = "0.0.0+unknown"


@hookimpl
def register_generators(register):
    register(
        "tiny-mlp",
        build_tiny_mlp,
        TinyMLPConfig,
        summary="Tiny MLP generator: noise -> image through three widening hidden layers (quick experiments)",
    )


@hookimpl
def register_losses(register):
    register(
        "relativistic",
        build_relativistic,
        RelativisticConfig,
        summary="Relativistic average GAN loss (RaLSGAN by default, or RaSGAN)",
    )


@hookimpl
def register_augmentations(register):
    register(
        "noise",
        build_noise,
        NoiseConfig,
        summary="Instance noise: Gaussian noise (sigma) added to every discriminator input",
    )


@hookimpl
def register_recipes(register):
    register("shapes-mlp", files("ganforge_extras") / "recipes" / "shapes-mlp.toml")


__all__ = [
    "InstanceNoise",
    "NoiseConfig",
    "RelativisticAverageLoss",
    "RelativisticConfig",
    "TinyMLPConfig",
    "TinyMLPGenerator",
    "build_noise",
    "build_relativistic",
    "build_tiny_mlp",
    "__version__",
]
