"""DCGAN generator and discriminator (Radford et al. 2015), plus the building blocks other
families reuse (the PatchGAN discriminator is this discriminator's trunk without the collapse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from ganforge.nn import NORMS, Norm, check_choice, check_int, conv2d, dcgan_init_, discriminator_trunk, make_norm  # noqa: F401

IMAGE_SIZES = (32, 64, 128)


@dataclass(frozen=True)
class DCGANGeneratorConfig:
    image_size: Literal[32, 64, 128] = 64
    noise_size: int = 100
    width: int = 32
    upsample: Literal["convtranspose", "upsample-conv"] = "convtranspose"
    norm: Norm = "batch"


def _upsample_block(in_ch: int, out_ch: int, mode: str, bias: bool) -> list[nn.Module]:
    """Layers that double the resolution."""
    if mode == "convtranspose":
        return [nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=bias)]
    # Nearest upsampling + 3x3 conv avoids the checkerboard artefacts of strided transposed convs.
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias)]


class DCGANGenerator(nn.Module):
    """Noise ``[B, noise_size]`` -> images ``[B, 3, image_size, image_size]`` in [-1, 1].

    1x1 -> 4x4 with a transposed conv, then blocks that double the resolution while halving the
    channels (for 64x64: 8w -> 4w -> 2w -> w -> 3).
    """

    def __init__(self, config: DCGANGeneratorConfig):
        super().__init__()
        check_choice("image_size", config.image_size, IMAGE_SIZES)
        check_choice("upsample", config.upsample, ("convtranspose", "upsample-conv"))
        check_choice("norm", config.norm, NORMS)
        check_int("noise_size", config.noise_size)
        check_int("width", config.width)
        self.config = config
        self.noise_size = config.noise_size
        self.image_size = config.image_size

        n_up = int(math.log2(config.image_size)) - 2  # doublings after the 4x4 stem
        bias = config.norm == "none"
        ch = config.width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.noise_size, ch, 4, 1, 0, bias=bias),
            make_norm(config.norm, ch),
            nn.ReLU(inplace=True),
        ]
        for _ in range(n_up - 1):
            layers += _upsample_block(ch, ch // 2, config.upsample, bias)
            layers += [make_norm(config.norm, ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += _upsample_block(ch, 3, config.upsample, True)
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init_)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


def build_dcgan_generator(config: DCGANGeneratorConfig | None = None) -> DCGANGenerator:
    return DCGANGenerator(config or DCGANGeneratorConfig())


# --------------------------------------------------------------------------- discriminator


@dataclass(frozen=True)
class DCGANDiscriminatorConfig:
    image_size: Literal[32, 64, 128] = 64
    width: int = 32
    norm: Norm = "batch"
    spectral_norm: bool = False


class DCGANDiscriminator(nn.Module):
    """Images ``[B, 3, S, S]`` -> one logit per image ``[B]``.

    The trunk halves the resolution down to 4x4; a final 4x4 conv (no padding) collapses it.
    """

    def __init__(self, config: DCGANDiscriminatorConfig):
        super().__init__()
        check_choice("image_size", config.image_size, IMAGE_SIZES)
        check_choice("norm", config.norm, NORMS)
        check_int("width", config.width)
        self.config = config
        n_down = int(math.log2(config.image_size)) - 2
        self.trunk, ch = discriminator_trunk(n_down, config.width, config.norm, config.spectral_norm)
        self.head = conv2d(ch, 1, 4, 1, 0, spectral_norm=config.spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        size = self.config.image_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(
                f"this DCGAN discriminator takes {size}x{size} images, got {tuple(x.shape[-2:])}"
            )
        return self.head(self.trunk(x)).view(x.shape[0])


def build_dcgan_discriminator(config: DCGANDiscriminatorConfig | None = None) -> DCGANDiscriminator:
    return DCGANDiscriminator(config or DCGANDiscriminatorConfig())


__all__ = [
    "DCGANDiscriminator",
    "DCGANDiscriminatorConfig",
    "DCGANGenerator",
    "DCGANGeneratorConfig",
    "build_dcgan_discriminator",
    "build_dcgan_generator",
    "conv2d",
    "dcgan_init_",
    "discriminator_trunk",
    "make_norm",
]
