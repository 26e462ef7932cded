"""SAGAN networks (Zhang et al. 2019): DCGAN-shaped generator and discriminator with a self-attention
block at a chosen resolution and spectral normalisation on every weight layer of both."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from ganforge.nn import dcgan_init_

IMAGE_SIZES = (32, 64, 128)


def _maybe_sn(module: nn.Module, on: bool) -> nn.Module:
    return _sn(module) if on else module


class SelfAttention(nn.Module):
    """Self-attention over all positions of a feature map (SAGAN, section 3):
    ``y = x + gamma * o``, ``o = v(softmax(f(x)^T g(x)) h(x))``, with 1x1 convs f, g (C/8 channels),
    h (C/2, on a 2x max-pooled map for g and h, as in the authors' code) and v. ``gamma`` starts
    at 0, so the block begins as the identity and the network learns how much to attend."""

    def __init__(self, channels: int, spectral_norm: bool = True):
        super().__init__()
        k = max(1, channels // 8)
        self.f = _maybe_sn(nn.Conv2d(channels, k, 1, bias=False), spectral_norm)
        self.g = _maybe_sn(nn.Conv2d(channels, k, 1, bias=False), spectral_norm)
        self.h = _maybe_sn(nn.Conv2d(channels, max(1, channels // 2), 1, bias=False), spectral_norm)
        self.v = _maybe_sn(nn.Conv2d(max(1, channels // 2), channels, 1, bias=False), spectral_norm)
        self.gamma = nn.Parameter(torch.zeros(()))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        b, c, hh, ww = x.shape
        query = self.f(x).flatten(2)  # [B, k, N]
        key = self.pool(self.g(x)).flatten(2)  # [B, k, N/4]
        value = self.pool(self.h(x)).flatten(2)  # [B, C/2, N/4]
        attn = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # [B, N, N/4]
        o = (value @ attn.transpose(1, 2)).view(b, -1, hh, ww)
        return x + self.gamma * self.v(o)


def _check(image_size: int, width: int, attention_at: int) -> None:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))}, got {image_size!r}")
    if width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    valid = [2**i for i in range(3, int(math.log2(image_size)) + 1)]
    if attention_at != 0 and attention_at not in valid:
        raise ValueError(f"attention_at must be 0 (none) or a resolution the network passes through: "
                         f"{', '.join(map(str, valid))}; got {attention_at!r}")


# --------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class SAGANGeneratorConfig:
    image_size: Literal[32, 64, 128] = 64
    noise_size: int = 128
    width: int = 32
    attention_at: int = 32
    """Resolution (pixels) of the feature map the self-attention block follows; 0: none."""
    spectral_norm: bool = True


class SAGANGenerator(nn.Module):
    """Noise -> images: a 4x4 transposed-conv stem, then 2x transposed-conv blocks (BatchNorm, ReLU)
    halving the channels, a self-attention block after the block that reaches ``attention_at``,
    and a final transposed conv + tanh. Spectral norm on every conv."""

    def __init__(self, config: SAGANGeneratorConfig):
        super().__init__()
        _check(config.image_size, config.width, config.attention_at)
        if config.noise_size < 1:
            raise ValueError(f"noise_size must be a positive integer, got {config.noise_size}")
        self.config = config
        self.noise_size = config.noise_size
        self.image_size = config.image_size
        sn = config.spectral_norm
        n_up = int(math.log2(config.image_size)) - 2
        ch = config.width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(config.noise_size, ch, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
        res = 4
        if config.attention_at == res:
            layers.append(SelfAttention(ch, sn))
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
            res *= 2
            if config.attention_at == res:
                layers.append(SelfAttention(ch, sn))
        layers += [nn.ConvTranspose2d(ch, 3, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init_)
        if sn:  # after the init: spectral norm wraps the initialised weights
            for i, m in enumerate(self.net):
                if isinstance(m, nn.ConvTranspose2d):
                    self.net[i] = _sn(m)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


def build_sagan_generator(config: SAGANGeneratorConfig | None = None) -> SAGANGenerator:
    return SAGANGenerator(config or SAGANGeneratorConfig())


# --------------------------------------------------------------------------- discriminator


@dataclass(frozen=True)
class SAGANDiscriminatorConfig:
    image_size: Literal[32, 64, 128] = 64
    width: int = 32
    attention_at: int = 32
    """Resolution (pixels) of the feature map the self-attention block follows; 0: none."""
    spectral_norm: bool = True


class SAGANDiscriminator(nn.Module):
    """Images -> one score per image ``[B]``: strided 4x4 convs (LeakyReLU 0.1, no norm layer,
    spectral norm) down to 4x4, a self-attention block after the conv that reaches
    ``attention_at``, and a 4x4 conv to one score."""

    def __init__(self, config: SAGANDiscriminatorConfig):
        super().__init__()
        _check(config.image_size, config.width, config.attention_at)
        self.config = config
        sn = config.spectral_norm
        n_down = int(math.log2(config.image_size)) - 2
        layers: list[nn.Module] = []
        ch_in, ch, res = 3, config.width, config.image_size
        if config.attention_at == res:
            raise ValueError("the discriminator's first attention point is after its first conv; "
                             f"attention_at must be below {res}")
        for i in range(n_down):
            layers += [_maybe_sn(_init(nn.Conv2d(ch_in, ch, 4, 2, 1)), sn), nn.LeakyReLU(0.1, inplace=True)]
            res //= 2
            if config.attention_at == res:
                layers.append(SelfAttention(ch, sn))
            ch_in, ch = ch, min(ch * 2, config.width * 8)
        layers.append(_maybe_sn(_init(nn.Conv2d(ch_in, 1, 4, 1, 0)), sn))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        size = self.config.image_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"this SAGAN discriminator takes {size}x{size} images, got {tuple(x.shape[-2:])}")
        return self.net(x).view(x.shape[0])


def _init(conv: nn.Module) -> nn.Module:
    dcgan_init_(conv)
    return conv


def build_sagan_discriminator(config: SAGANDiscriminatorConfig | None = None) -> SAGANDiscriminator:
    return SAGANDiscriminator(config or SAGANDiscriminatorConfig())
