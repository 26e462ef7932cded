"""Lightweight GAN networks (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for
High-fidelity Few-shot Image Synthesis", a.k.a. FastGAN), written from the paper.

Generator: noise -> 4x4 (transposed conv, BN, GLU), then one upsampling block per doubling
(nearest x2, 3x3 conv, optional noise injection, BN, GLU) and a 3x3 conv + tanh to RGB. Skip-Layer
channel Excitation (SLE) lets a low-resolution feature map gate the channels of a map 8x larger:
``high * sigmoid(conv1x1(lrelu(conv4x4(avgpool4x4(low)))))``. The paper gates 8->128, 16->256,
32->512 at 1024 px (16x apart); at the sizes here the pairs are 8x apart, on the (up to) three
largest resolutions of at least 32 px:

    32 px: 4->32     64 px: 4->32, 8->64     128 px: 4->32, 8->64, 16->128
    256 px: 8->64, 16->128, 32->256

Discriminator: a 4x4 stride-2 stem, then the paper's two-branch down blocks (strided 4x4 conv path
and avg-pool + 1x1 conv path, averaged) down to 8x8, and a small head giving a 5x5 grid of
real/fake logits ``[B, 1, 5, 5]``. It is also an encoder for the paper's self-supervision: two
small decoders (nearest x2, 3x3 conv, BN, GLU per doubling; 3x3 conv + tanh) reconstruct, from its
features of a *real* image,

- the whole image, from the 8x8 feature map;
- one quadrant of the image (top-left, top-right, bottom-left, bottom-right: 0-3, drawn per image
  from torch's global RNG), from the same quadrant of the 16x16 feature map (an 8x8 crop);

both at ``recon_size = min(128, image_size // 2)`` pixels (the paper decodes to 128 px from
1024 px images). The targets are the image and its quadrant, area-downsampled to that size
(:meth:`LightweightDiscriminator.reconstruction_targets`). The paper's D also uses SLE; this one
does not.

Spectral normalisation wraps every conv of both networks when ``spectral_norm`` is on (the
paper's setting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ganforge.nn import dcgan_init_

IMAGE_SIZES = (32, 64, 128, 256)
SLE_RATIO = 8  # a gated map is this many times wider than the map that gates it

# Channels per resolution, as multiples of ``width`` (the paper's ratios, ngf/ndf = width).
G_MULTIPLIERS = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5}
D_MULTIPLIERS = {8: 16, 16: 8, 32: 4, 64: 2, 128: 1}


# --------------------------------------------------------------------------- helpers


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0, *, sn: bool,
          bias: bool = True, transpose: bool = False) -> nn.Module:
    cls = nn.ConvTranspose2d if transpose else nn.Conv2d
    conv = cls(in_ch, out_ch, kernel, stride, padding, bias=bias)
    dcgan_init_(conv)  # N(0, 0.02), before spectral norm re-parametrises the weight
    return _spectral_norm(conv) if sn else conv


def _bn(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    dcgan_init_(bn)
    return bn


def _check_common(image_size: int, width: int, multipliers: tuple[float, ...], expected: int, what: str) -> None:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))}, got {image_size!r}")
    if width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    if multipliers:
        if len(multipliers) != expected:
            raise ValueError(f"multipliers must list {expected} values at image_size {image_size} ({what}), "
                             f"got {len(multipliers)}")
        if any(not m > 0 for m in multipliers):
            raise ValueError(f"multipliers must all be > 0, got {list(multipliers)}")


def _channels(width: int, mult: float) -> int:
    return max(1, int(round(width * mult)))


def sle_pairs(image_size: int) -> list[tuple[int, int]]:
    """``(low, high)`` resolutions joined by skip-layer excitation at ``image_size`` (see the module doc)."""
    targets = [r for r in (image_size // 4, image_size // 2, image_size) if r >= 32]
    return [(r // SLE_RATIO, r) for r in targets]


class SkipLayerExcitation(nn.Module):
    """``forward(low, high)``: ``high`` with each channel scaled by a gate in (0, 1) computed from
    ``low``: adaptive avg-pool to 4x4 -> 4x4 conv (to 1x1) -> LeakyReLU(0.1) -> 1x1 conv -> sigmoid.
    One gate per (image, channel): a global, image-conditioned channel re-weighting that also gives
    the low-resolution layers a short gradient path."""

    def __init__(self, low_channels: int, high_channels: int, spectral_norm: bool = True):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.squeeze = _conv(low_channels, high_channels, 4, sn=spectral_norm, bias=False)
        self.act = nn.LeakyReLU(0.1)
        self.excite = _conv(high_channels, high_channels, 1, sn=spectral_norm, bias=False)

    def gates(self, low: Tensor) -> Tensor:
        """The per-channel gates ``[B, C_high, 1, 1]``, each in (0, 1)."""
        return torch.sigmoid(self.excite(self.act(self.squeeze(self.pool(low)))))

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return high * self.gates(low)


class NoiseInjection(nn.Module):
    """``x + weight * noise``, one Gaussian noise map per image (shared by all channels) drawn from
    torch's global RNG; ``weight`` is learnt and starts at 0. With ``shared=True`` one map serves
    the whole batch (so a latent walk is not flickered by fresh noise in every frame)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, shared: bool = False) -> Tensor:
        b, _, h, w = x.shape
        noise = torch.randn(1 if shared else b, 1, h, w, device=x.device, dtype=x.dtype)
        return x + self.weight * noise


class UpBlock(nn.Module):
    """Nearest x2 upsampling, 3x3 conv (to 2*out channels), [noise injection], BN, GLU (-> out)."""

    def __init__(self, in_ch: int, out_ch: int, *, noise: bool, spectral_norm: bool):
        super().__init__()
        self.conv = _conv(in_ch, 2 * out_ch, 3, 1, 1, sn=spectral_norm, bias=False)
        self.noise = NoiseInjection() if noise else None
        self.bn = _bn(2 * out_ch)
        self.glu = nn.GLU(dim=1)

    def forward(self, x: Tensor, shared_noise: bool = False) -> Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        if self.noise is not None:
            x = self.noise(x, shared_noise)
        return self.glu(self.bn(x))


# --------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class LightweightGeneratorConfig:
    image_size: Literal[32, 64, 128, 256] = 64
    noise_size: int = 256
    width: int = 16  # channels at resolution r: width * multiplier(r)
    # One multiplier per resolution from 4x4 up to image_size (e.g. 5 values at 64 px); empty: the
    # paper's ratios 4:16, 8:8, 16:4, 32:2, 64:2, 128:1, 256:0.5.
    multipliers: tuple[float, ...] = ()
    sle: bool = True  # skip-layer excitation (off: plain upsampling stack, for ablations)
    noise_injection: bool = True
    spectral_norm: bool = True

    def __post_init__(self):
        n = int(math.log2(self.image_size)) - 1 if self.image_size in IMAGE_SIZES else 0
        _check_common(self.image_size, self.width, self.multipliers, n, "4x4 up to image_size")
        if self.noise_size < 1:
            raise ValueError(f"noise_size must be a positive integer, got {self.noise_size!r}")


class LightweightGenerator(nn.Module):
    """Noise ``[B, noise_size]`` -> images ``[B, 3, image_size, image_size]`` in [-1, 1]."""

    def __init__(self, config: LightweightGeneratorConfig):
        super().__init__()
        self.config = config
        self.noise_size = config.noise_size
        self.image_size = config.image_size
        c, sn = config, config.spectral_norm
        self.resolutions = [2**i for i in range(2, int(math.log2(c.image_size)) + 1)]  # 4, 8, ..., S
        mults = c.multipliers or tuple(G_MULTIPLIERS[r] for r in self.resolutions)
        self.channels = {r: _channels(c.width, m) for r, m in zip(self.resolutions, mults)}
        ch4 = self.channels[4]
        # 1x1 -> 4x4; GLU halves the 2*ch4 channels of the transposed conv.
        self.init = nn.Sequential(
            _conv(c.noise_size, 2 * ch4, 4, sn=sn, bias=False, transpose=True), _bn(2 * ch4), nn.GLU(dim=1),
        )
        self.ups = nn.ModuleDict({
            str(r): UpBlock(self.channels[r // 2], self.channels[r], noise=c.noise_injection, spectral_norm=sn)
            for r in self.resolutions[1:]
        })
        self.sle_pairs = sle_pairs(c.image_size) if c.sle else []
        self.sle = nn.ModuleDict({
            str(high): SkipLayerExcitation(self.channels[low], self.channels[high], sn) for low, high in self.sle_pairs
        })
        self.to_rgb = _conv(self.channels[c.image_size], 3, 3, 1, 1, sn=sn)

    def features(self, z: Tensor, shared_noise: bool = False) -> dict[int, Tensor]:
        """Every resolution's feature map (after its SLE gate, where it has one)."""
        feats = {4: self.init(z.view(z.shape[0], -1, 1, 1))}
        for r in self.resolutions[1:]:
            x = self.ups[str(r)](feats[r // 2], shared_noise)
            if str(r) in self.sle:
                low = r // SLE_RATIO
                x = self.sle[str(r)](feats[low], x)
            feats[r] = x
        return feats

    def forward(self, z: Tensor, shared_noise: bool = False) -> Tensor:
        return torch.tanh(self.to_rgb(self.features(z, shared_noise)[self.image_size]))


def build_lightweight_generator(config: LightweightGeneratorConfig | None = None) -> LightweightGenerator:
    return LightweightGenerator(config or LightweightGeneratorConfig())


# --------------------------------------------------------------------------- discriminator


class DownBlock(nn.Module):
    """The paper's two-branch down block, halving the resolution:
    ``(main(x) + direct(x)) / 2`` with main = 4x4 stride-2 conv, BN, LReLU, 3x3 conv, BN, LReLU and
    direct = 2x2 avg-pool, 1x1 conv, BN, LReLU."""

    def __init__(self, in_ch: int, out_ch: int, spectral_norm: bool):
        super().__init__()
        sn = spectral_norm
        self.main = nn.Sequential(
            _conv(in_ch, out_ch, 4, 2, 1, sn=sn, bias=False), _bn(out_ch), nn.LeakyReLU(0.2),
            _conv(out_ch, out_ch, 3, 1, 1, sn=sn, bias=False), _bn(out_ch), nn.LeakyReLU(0.2),
        )
        self.direct = nn.Sequential(
            nn.AvgPool2d(2), _conv(in_ch, out_ch, 1, sn=sn, bias=False), _bn(out_ch), nn.LeakyReLU(0.2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """8x8 features -> an RGB image of ``8 * 2**len(channels)`` pixels: per doubling nearest x2,
    3x3 conv, BN, GLU; then a 3x3 conv and tanh."""

    def __init__(self, in_ch: int, channels: list[int], spectral_norm: bool):
        super().__init__()
        blocks, ch = [], in_ch
        for out in channels:
            blocks.append(UpBlock(ch, out, noise=False, spectral_norm=spectral_norm))
            ch = out
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = _conv(ch, 3, 3, 1, 1, sn=spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.to_rgb(self.blocks(x)))


@dataclass(frozen=True)
class LightweightDiscriminatorConfig:
    image_size: Literal[32, 64, 128, 256] = 64
    width: int = 16  # channels at resolution r: width * multiplier(r)
    # One multiplier per feature resolution from image_size/2 down to 8 (e.g. 3 values at 64 px);
    # empty: the paper's ratios 128:1, 64:2, 32:4, 16:8, 8:16. The decoders use half the channels
    # of the encoder at each resolution.
    multipliers: tuple[float, ...] = ()
    spectral_norm: bool = True

    def __post_init__(self):
        n = int(math.log2(self.image_size)) - 3 if self.image_size in IMAGE_SIZES else 0
        _check_common(self.image_size, self.width, self.multipliers, n, "image_size/2 down to 8")


class LightweightDiscriminator(nn.Module):
    """Images ``[B, 3, S, S]`` -> logits ``[B, 1, 5, 5]`` (a grid of overlapping patch scores).

    ``forward(x, reconstruct=True)`` returns ``(logits, recon_whole, recon_part, part_index)``:
    the decoders' reconstructions ``[B, 3, R, R]`` (``R = recon_size``) of the whole image and of
    quadrant ``part_index`` (``int64 [B]``, 0-3) of each image.
    """

    multiple_outputs: ClassVar[bool] = True  # forward(x, reconstruct=True) returns a tuple

    def __init__(self, config: LightweightDiscriminatorConfig):
        super().__init__()
        self.config = config
        self.image_size = config.image_size
        sn = config.spectral_norm
        # Feature resolutions S/2, ..., 16, 8.
        self.resolutions = [2**i for i in range(int(math.log2(config.image_size)) - 1, 2, -1)]
        mults = config.multipliers or tuple(D_MULTIPLIERS[r] for r in self.resolutions)
        self.channels = {r: _channels(config.width, m) for r, m in zip(self.resolutions, mults)}
        top = self.resolutions[0]
        self.stem = nn.Sequential(_conv(3, self.channels[top], 4, 2, 1, sn=sn), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleDict({
            str(r): DownBlock(self.channels[r * 2], self.channels[r], sn) for r in self.resolutions[1:]
        })
        c8 = self.channels[8]
        self.head = nn.Sequential(
            _conv(c8, c8, 1, sn=sn, bias=False), _bn(c8), nn.LeakyReLU(0.2), _conv(c8, 1, 4, sn=sn),
        )
        self.recon_size = min(128, config.image_size // 2)
        ups = int(math.log2(self.recon_size)) - 3  # 8x8 -> recon_size
        dec = [max(1, self.channels.get(8 * 2**i, self.channels[top]) // 2) for i in range(1, ups + 1)]
        self.decoder_whole = Decoder(c8, dec, sn)
        self.decoder_part = Decoder(self.channels[16], dec, sn)

    def _check(self, x: Tensor) -> None:
        size = self.image_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"this lightweight discriminator takes {size}x{size} images, got {tuple(x.shape[-2:])}")

    def forward(self, x: Tensor, reconstruct: bool = False):
        self._check(x)
        feats = {self.resolutions[0]: self.stem(x)}
        for r in self.resolutions[1:]:
            feats[r] = self.downs[str(r)](feats[r * 2])
        logits = self.head(feats[8])
        if not reconstruct:
            return logits
        # One quadrant per image, from the global RNG (seeded and checkpointed by the trainer).
        part = torch.randint(0, 4, (x.shape[0],), device=x.device)
        crop = quadrant(feats[16], part)  # [B, C16, 8, 8]
        return logits, self.decoder_whole(feats[8]), self.decoder_part(crop), part

    def reconstruction_targets(self, x: Tensor, part: Tensor) -> tuple[Tensor, Tensor]:
        """What the decoders should produce for images ``x`` and quadrants ``part``: the image and
        its quadrant, each area-downsampled to ``recon_size``."""
        size = self.recon_size
        whole = F.interpolate(x, size=(size, size), mode="area")
        piece = quadrant(x, part)
        if piece.shape[-1] != size:
            piece = F.interpolate(piece, size=(size, size), mode="area")
        return whole, piece


def quadrant(x: Tensor, part: Tensor) -> Tensor:
    """Quadrant ``part[b]`` of each ``x[b]`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    quads = torch.stack([x[..., :h, :w], x[..., :h, w:], x[..., h:, :w], x[..., h:, w:]])  # [4, B, C, h, w]
    return quads[part, torch.arange(x.shape[0], device=x.device)]


def build_lightweight_discriminator(config: LightweightDiscriminatorConfig | None = None) -> LightweightDiscriminator:
    return LightweightDiscriminator(config or LightweightDiscriminatorConfig())


__all__ = [
    "LightweightDiscriminator",
    "LightweightDiscriminatorConfig",
    "LightweightGenerator",
    "LightweightGeneratorConfig",
    "NoiseInjection",
    "SkipLayerExcitation",
    "build_lightweight_discriminator",
    "build_lightweight_generator",
    "quadrant",
    "sle_pairs",
]
