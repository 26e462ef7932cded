"""Class-conditional networks: a generator with conditional BatchNorm (or a label embedding joined
to the noise) and a projection discriminator (Miyato & Koyama 2018).

Both expose ``num_classes`` and take the labels (``int64 [B]``) as their second argument, the
convention of ``ganforge.core.components``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ganforge.nn import conv2d, dcgan_init_, discriminator_trunk

IMAGE_SIZES = (32, 64, 128)


def _check(name: str, ok: bool, value) -> None:
    if not ok:
        raise ValueError(f"{name} has an invalid value {value!r}")


def _check_common(image_size: int, width: int, num_classes: int) -> None:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))}, got {image_size!r}")
    if width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer (the dataset's class count), got {num_classes!r}")


# --------------------------------------------------------------------------- conditional BatchNorm


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine parameters, followed by a per-class scale and shift:
    ``y = (1 + gamma[label]) * BN(x) + beta[label]`` (de Vries et al. 2017; used by SNGAN/BigGAN).
    The class embeddings start at zero, so at initialisation it is a plain BatchNorm."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.zeros_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.bn(x)
        g = 1.0 + self.gamma(labels)[:, :, None, None]
        b = self.beta(labels)[:, :, None, None]
        return h * g + b


# --------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class ConditionalGeneratorConfig:
    num_classes: int = 4  # follows the data's number of classes unless the recipe sets it
    image_size: Literal[32, 64, 128] = 64
    noise_size: int = 128
    width: int = 32
    conditioning: Literal["cbn", "embed"] = "cbn"
    """``cbn``: class-conditional BatchNorm in every block; ``embed``: a learned class embedding
    concatenated to the noise (and plain BatchNorm)."""
    embed_size: int = 32  # size of the class embedding joined to the noise (conditioning = "embed")
    spectral_norm: bool = False


class ConditionalGenerator(nn.Module):
    """``G(z, labels)``: noise ``[B, noise_size]`` and class indices ``[B]`` -> images ``[B, 3, S, S]``.

    The DCGAN generator with class conditioning: a linear stem to 4x4 with ``8 * width`` channels
    (for 64x64), then 4x4 stride-2 transposed convs + (conditional) BatchNorm + ReLU that double the
    resolution and halve the channels, and a last transposed conv + tanh to RGB.
    """

    def __init__(self, config: ConditionalGeneratorConfig):
        super().__init__()
        _check_common(config.image_size, config.width, config.num_classes)
        _check("conditioning", config.conditioning in ("cbn", "embed"), config.conditioning)
        _check("noise_size", config.noise_size >= 1, config.noise_size)
        _check("embed_size", config.embed_size >= 1, config.embed_size)
        self.config = config
        self.noise_size = config.noise_size
        self.num_classes = config.num_classes
        self.image_size = config.image_size
        self.cbn = config.conditioning == "cbn"
        sn = _spectral_norm if config.spectral_norm else (lambda m: m)

        n_up = int(math.log2(config.image_size)) - 2  # doublings after the 4x4 stem
        ch = config.width * 2 ** (n_up - 1)
        stem_in = config.noise_size
        if not self.cbn:
            self.embed = nn.Embedding(config.num_classes, config.embed_size)
            stem_in += config.embed_size
        self.stem_channels = ch
        self.stem = nn.Linear(stem_in, ch * 16, bias=False)
        self.stem_norm = self._norm(ch)
        self.ups = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(n_up - 1):
            self.ups.append(nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False))
            self.norms.append(self._norm(ch // 2))
            ch //= 2
        self.to_rgb = nn.ConvTranspose2d(ch, 3, 4, 2, 1)
        self.apply(dcgan_init_)
        if config.spectral_norm:
            self.stem = sn(self.stem)
            self.ups = nn.ModuleList(sn(c) for c in self.ups)
            self.to_rgb = sn(self.to_rgb)

    def _norm(self, channels: int) -> nn.Module:
        return ConditionalBatchNorm2d(channels, self.num_classes) if self.cbn else nn.BatchNorm2d(channels)

    def _apply_norm(self, norm: nn.Module, h: Tensor, labels: Tensor) -> Tensor:
        return norm(h, labels) if self.cbn else norm(h)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        z = z.view(z.shape[0], -1)
        if not self.cbn:
            z = torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)
        h = self.stem(z).view(z.shape[0], self.stem_channels, 4, 4)
        h = torch.relu(self._apply_norm(self.stem_norm, h, labels))
        for up, norm in zip(self.ups, self.norms):
            h = torch.relu(self._apply_norm(norm, up(h), labels))
        return torch.tanh(self.to_rgb(h))


def build_conditional_generator(config: ConditionalGeneratorConfig | None = None) -> ConditionalGenerator:
    return ConditionalGenerator(config or ConditionalGeneratorConfig())


# --------------------------------------------------------------------------- projection discriminator


@dataclass(frozen=True)
class ProjectionDiscriminatorConfig:
    num_classes: int = 4  # follows the data's number of classes unless the recipe sets it
    image_size: Literal[32, 64, 128] = 64
    width: int = 32
    spectral_norm: bool = True


class ProjectionDiscriminator(nn.Module):
    """``D(x, labels)`` -> one score per image ``[B]``:
    ``psi(phi(x)) + <embed(label), phi(x)>`` (Miyato & Koyama 2018, "cGANs with projection
    discriminator"). ``phi`` is the DCGAN trunk (strided 4x4 convs, LeakyReLU, no norm layer,
    spectral norm) down to 4x4, then ReLU and a sum over positions; ``psi`` a linear layer; the
    class embedding is spectrally normalised too, as in the paper.
    """

    def __init__(self, config: ProjectionDiscriminatorConfig):
        super().__init__()
        _check_common(config.image_size, config.width, config.num_classes)
        self.config = config
        self.num_classes = config.num_classes
        n_down = int(math.log2(config.image_size)) - 2
        self.trunk, ch = discriminator_trunk(n_down, config.width, "none", config.spectral_norm, max_mult=8)
        self.extra = conv2d(ch, ch, 3, 1, 1, spectral_norm=config.spectral_norm)
        linear = nn.Linear(ch, 1)
        embed = nn.Embedding(config.num_classes, ch)
        dcgan_init_(linear)
        nn.init.normal_(embed.weight, 0.0, 0.02)
        if config.spectral_norm:
            linear, embed = _spectral_norm(linear), _spectral_norm(embed)
        self.linear, self.embed = linear, embed

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        size = self.config.image_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"this projection discriminator takes {size}x{size} images, got {tuple(x.shape[-2:])}")
        h = torch.relu(self.extra(self.trunk(x))).sum(dim=(2, 3))  # phi(x): [B, C]
        out = self.linear(h).squeeze(1)
        return out + (self.embed(labels).to(h.dtype) * h).sum(dim=1)


def build_projection_discriminator(config: ProjectionDiscriminatorConfig | None = None) -> ProjectionDiscriminator:
    return ProjectionDiscriminator(config or ProjectionDiscriminatorConfig())
