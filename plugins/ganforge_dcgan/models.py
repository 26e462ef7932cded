"""DCGAN generator and discriminator (Radford et al. 2015), plus the building blocks other
families reuse (the PatchGAN discriminator is this discriminator's trunk without the collapse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

Norm = Literal["batch", "instance", "none"]
NORMS = ("batch", "instance", "none")
IMAGE_SIZES = (32, 64, 128)


# --------------------------------------------------------------------------- shared helpers


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer: ``"batch"``, ``"instance"`` (affine) or ``"none"`` (identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; valid norms: {', '.join(NORMS)}")


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN initialisation, in place: conv weights ~ N(0, 0.02), norm weights ~ N(1, 0.02),
    biases 0. Use it via ``net.apply(dcgan_init_)`` *before* wrapping layers in spectral norm
    (afterwards ``weight`` is a computed property and writing to it has no effect)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def conv2d(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    *,
    bias: bool = True,
    spectral_norm: bool = False,
    padding_mode: str = "zeros",
) -> nn.Module:
    """A DCGAN-initialised ``Conv2d``, optionally wrapped in spectral normalisation."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias, padding_mode=padding_mode)
    dcgan_init_(conv)
    return _spectral_norm(conv) if spectral_norm else conv


def discriminator_trunk(
    n_down: int,
    width: int,
    norm: str = "batch",
    spectral_norm: bool = False,
    *,
    in_channels: int = 3,
    max_mult: int | None = None,
) -> tuple[nn.Sequential, int]:
    """The DCGAN discriminator body: ``n_down`` convs (kernel 4, stride 2, padding 1), each
    halving the resolution, with LeakyReLU(0.2). The first goes to ``width`` channels with no
    norm; each later one doubles the channels (capped at ``max_mult * width`` if given) and is
    followed by ``norm``. Returns the module and its output channel count.

    Receptive field of the trunk alone: ``3 * 2**n_down - 2`` pixels (4, 10, 22, 46, 94, ...).
    """
    if n_down < 1:
        raise ValueError(f"the discriminator needs at least one downsampling conv, got {n_down}")
    layers: list[nn.Module] = []
    ch_in, ch_out = in_channels, width
    for i in range(n_down):
        if i > 0:
            mult = 2**i if max_mult is None else min(2**i, max_mult)
            ch_out = width * mult
        use_norm = i > 0 and norm != "none"
        # A bias right before a norm layer is redundant (the norm removes the mean).
        layers.append(conv2d(ch_in, ch_out, 4, 2, 1, bias=not use_norm, spectral_norm=spectral_norm))
        if use_norm:
            norm_layer = make_norm(norm, ch_out)
            dcgan_init_(norm_layer)
            layers.append(norm_layer)
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        ch_in = ch_out
    return nn.Sequential(*layers), ch_out


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------- generator


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
        _check_choice("image_size", config.image_size, IMAGE_SIZES)
        _check_choice("upsample", config.upsample, ("convtranspose", "upsample-conv"))
        _check_choice("norm", config.norm, NORMS)
        _check_positive("noise_size", config.noise_size)
        _check_positive("width", config.width)
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
        _check_choice("image_size", config.image_size, IMAGE_SIZES)
        _check_choice("norm", config.norm, NORMS)
        _check_positive("width", config.width)
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
