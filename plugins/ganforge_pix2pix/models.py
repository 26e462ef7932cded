"""pix2pix networks (Isola et al. 2017): a U-Net generator with skip connections and dropout, and a
conditional PatchGAN that judges (input, output) pairs, concatenated to 6 channels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.nn import NORMS, Norm, check_choice, check_int, conv2d, dcgan_init_, discriminator_trunk, make_norm

# The same norm choices and option checks as the CycleGAN networks.


# --------------------------------------------------------------------------- U-Net generator


@dataclass(frozen=True)
class UNetGeneratorConfig:
    image_size: int = 64  # informational: inputs of any size divisible by 2**depth work (others are padded)
    width: int = 64
    depth: int = 6
    """Down-sampling steps: 6 takes 64x64 to 1x1 (pix2pix's 256x256 model has 8)."""
    max_mult: int = 8  # channels stop doubling at max_mult * width
    norm: Norm = "instance"
    dropout: float = 0.5
    """Dropout in the decoder blocks right after the bottleneck (pix2pix's noise source); 0: off."""
    dropout_layers: int = 3

    def __post_init__(self):
        check_choice("norm", self.norm, NORMS)
        check_int("width", self.width, 1)
        check_int("depth", self.depth, 2)
        check_int("max_mult", self.max_mult, 1)
        check_int("dropout_layers", self.dropout_layers, 0)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class UNetGenerator(nn.Module):
    """Images ``[B, 3, H, W]`` -> images ``[B, 3, H, W]`` in [-1, 1].

    Encoder: ``depth`` convs (4x4, stride 2), LeakyReLU(0.2), norm on all but the first and the
    innermost. Decoder: transposed convs (4x4, stride 2) with ReLU, each taking the previous
    decoder output concatenated with the encoder output of the same resolution (the skip
    connections that carry the input's layout, e.g. an edge map's lines, straight to the output);
    dropout on the ``dropout_layers`` blocks after the bottleneck; tanh at the end.
    """

    def __init__(self, config: UNetGeneratorConfig):
        super().__init__()
        self.config = config
        c = [config.width * min(2**i, config.max_mult) for i in range(config.depth)]
        self.downs = nn.ModuleList()
        for i in range(config.depth):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            use_norm = 0 < i < config.depth - 1 and config.norm != "none"
            layers.append(nn.Conv2d(3 if i == 0 else c[i - 1], c[i], 4, 2, 1, bias=not use_norm))
            if use_norm:
                layers.append(make_norm(config.norm, c[i]))
            self.downs.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList()
        for i in reversed(range(config.depth)):
            cin = c[i] if i == config.depth - 1 else 2 * c[i]
            if i == 0:
                self.ups.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(cin, 3, 4, 2, 1), nn.Tanh()))
                continue
            use_norm = config.norm != "none"
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, c[i - 1], 4, 2, 1, bias=not use_norm)]
            if use_norm:
                layers.append(make_norm(config.norm, c[i - 1]))
            if config.dropout > 0 and 0 < config.depth - 1 - i <= config.dropout_layers:
                layers.append(nn.Dropout(config.dropout))
            self.ups.append(nn.Sequential(*layers))
        self.apply(dcgan_init_)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = 2**self.config.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:  # any size works: pad to a multiple of 2**depth, crop back
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        y = skips[-1]
        for j, up in enumerate(self.ups):
            y = up(y if j == 0 else torch.cat([y, skips[-1 - j]], dim=1))
        return y[..., :h, :w]


def build_unet_generator(config: UNetGeneratorConfig | None = None) -> UNetGenerator:
    return UNetGenerator(config or UNetGeneratorConfig())


# --------------------------------------------------------------------------- conditional PatchGAN


@dataclass(frozen=True)
class PairPatchGANConfig:
    image_size: int = 64  # informational only
    in_channels: int = 6  # input and output images, concatenated
    width: int = 64
    n_layers: int = 3
    norm: Norm = "instance"
    spectral_norm: bool = False

    def __post_init__(self):
        check_choice("norm", self.norm, NORMS)
        check_int("width", self.width, 1)
        check_int("n_layers", self.n_layers, 1)
        check_int("in_channels", self.in_channels, 1)


def pair_patchgan_receptive_field(n_layers: int) -> int:
    """Side of the input patch each logit sees: 70 px for the default n_layers = 3 (pix2pix's 70x70 PatchGAN)."""
    rf = 1
    for _ in range(2):  # the two stride-1 4x4 convs at the end
        rf += 3
    for _ in range(n_layers):
        rf = rf * 2 + 2
    return rf


class PairPatchGAN(nn.Module):
    """``D(cat([input, output], 1))`` -> a grid of patch logits ``[B, 1, h, w]``.

    pix2pix's PatchGAN: ``n_layers`` strided 4x4 convs (channels doubling, capped at 8 * width), a
    stride-1 4x4 conv, then a stride-1 4x4 conv to one channel. At 64x64: a 6x6 grid of logits, each
    seeing a 70x70 patch. Being conditional, it judges whether the output fits *this* input.
    """

    def __init__(self, config: PairPatchGANConfig):
        super().__init__()
        self.config = config
        self.in_channels = config.in_channels
        self.receptive_field = pair_patchgan_receptive_field(config.n_layers)
        self.trunk, ch = discriminator_trunk(config.n_layers, config.width, config.norm, config.spectral_norm,
                                             in_channels=config.in_channels, max_mult=8)
        out = config.width * min(2**config.n_layers, 8)
        use_norm = config.norm != "none"
        layers: list[nn.Module] = [conv2d(ch, out, 4, 1, 1, bias=not use_norm, spectral_norm=config.spectral_norm)]
        if use_norm:
            norm = make_norm(config.norm, out)
            dcgan_init_(norm)
            layers.append(norm)
        layers += [nn.LeakyReLU(0.2, inplace=True), conv2d(out, 1, 4, 1, 1, spectral_norm=config.spectral_norm)]
        self.head = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"this discriminator takes {self.in_channels} channels (input and output images "
                             f"concatenated), got {x.shape[1]}")
        return self.head(self.trunk(x))


def build_pair_patchgan(config: PairPatchGANConfig | None = None) -> PairPatchGAN:
    return PairPatchGAN(config or PairPatchGANConfig())
