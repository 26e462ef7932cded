"""CycleGAN networks (Zhu et al. 2017): a ResNet image-to-image generator and a PatchGAN
discriminator built on the DCGAN discriminator trunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.nn import NORMS, Norm, check_choice, check_int, conv2d, dcgan_init_, discriminator_trunk, make_norm


# --------------------------------------------------------------------------- ResNet generator


@dataclass(frozen=True)
class ResnetGeneratorConfig:
    width: int = 32
    n_blocks: int = 3
    n_downsample: int = 2
    norm: Norm = "instance"
    upsample: Literal["convtranspose", "upsample-conv"] = "upsample-conv"
    padding: Literal["reflect", "zero"] = "reflect"


def _conv_norm_relu(in_ch: int, out_ch: int, kernel: int, stride: int, pad_mode: str, norm: str) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=norm == "none", padding_mode=pad_mode),
        make_norm(norm, out_ch),
        nn.ReLU(inplace=True),
    ]


class ResidualBlock(nn.Module):
    """x + (conv3x3 -> norm -> ReLU -> conv3x3 -> norm)(x)."""

    def __init__(self, channels: int, norm: str, pad_mode: str):
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=bias, padding_mode=pad_mode),
            make_norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=bias, padding_mode=pad_mode),
            make_norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Images ``[B, 3, H, W]`` -> images of the same size, in [-1, 1].

    7x7 conv to ``width`` channels, ``n_downsample`` stride-2 convs doubling the channels,
    ``n_blocks`` residual blocks, a mirrored decoder and a 7x7 conv to RGB + tanh. Fully
    convolutional: inputs whose sides are not multiples of ``2**n_downsample`` are padded up to
    one internally and the output is cropped back, so any size works.
    """

    def __init__(self, config: ResnetGeneratorConfig):
        super().__init__()
        check_choice("norm", config.norm, NORMS)
        check_choice("upsample", config.upsample, ("convtranspose", "upsample-conv"))
        check_choice("padding", config.padding, ("reflect", "zero"))
        check_int("width", config.width, 1)
        check_int("n_blocks", config.n_blocks, 0)
        check_int("n_downsample", config.n_downsample, 0)
        self.config = config
        self.multiple = 2**config.n_downsample
        pad_mode = "reflect" if config.padding == "reflect" else "zeros"
        norm, w = config.norm, config.width

        layers: list[nn.Module] = _conv_norm_relu(3, w, 7, 1, pad_mode, norm)
        ch = w
        for _ in range(config.n_downsample):
            layers += _conv_norm_relu(ch, ch * 2, 3, 2, pad_mode, norm)
            ch *= 2
        layers += [ResidualBlock(ch, norm, pad_mode) for _ in range(config.n_blocks)]
        for _ in range(config.n_downsample):
            if config.upsample == "convtranspose":
                layers.append(nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=norm == "none"))
            else:  # nearest upsampling + conv: no checkerboard artefacts
                layers += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(ch, ch // 2, 3, 1, 1, bias=norm == "none", padding_mode=pad_mode),
                ]
            layers += [make_norm(norm, ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.Conv2d(ch, 3, 7, 1, 3, padding_mode=pad_mode), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init_)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = -h % m, -w % m
        if ph or pw:
            top, left = ph // 2, pw // 2
            pad = (left, pw - left, top, ph - top)
            # Reflect padding needs the pad to be smaller than the side; fall back to replicate.
            mode = "reflect" if ph < h and pw < w else "replicate"
            out = self.net(F.pad(x, pad, mode=mode))
            return out[..., top : top + h, left : left + w]
        return self.net(x)


def build_resnet_generator(config: ResnetGeneratorConfig | None = None) -> ResnetGenerator:
    return ResnetGenerator(config or ResnetGeneratorConfig())


# --------------------------------------------------------------------------- PatchGAN


@dataclass(frozen=True)
class PatchGANDiscriminatorConfig:
    image_size: int = 64  # informational only: used for the summary, never for the output shape
    width: int = 64
    n_layers: int = 3
    norm: Norm = "instance"
    spectral_norm: bool = False


def patchgan_receptive_field(n_layers: int) -> int:
    """Side of the input patch each output logit sees, in pixels.

    ``n_layers + 1`` convs k4 s2 give ``3 * 2**n - 2`` (n = n_layers + 1); the final k3 s1 conv
    adds ``2 * 2**n``. Default (n_layers=3): 78 px.
    """
    n = n_layers + 1
    return 5 * 2**n - 2


class PatchGANDiscriminator(nn.Module):
    """Images ``[B, 3, H, W]`` -> a grid of patch logits ``[B, 1, H / 2**(n_layers+1), ...]``.

    The DCGAN discriminator trunk (the first conv plus ``n_layers`` stride-2 convs, channels
    capped at 8 * width) without the final collapse, then a 3x3 stride-1 conv to one channel.
    At 64x64 with n_layers=3: 64 -> 32 -> 16 -> 8 -> 4, output ``[B, 1, 4, 4]``, each logit
    seeing a 78x78 patch (``patchgan_receptive_field``).
    """

    def __init__(self, config: PatchGANDiscriminatorConfig):
        super().__init__()
        check_choice("norm", config.norm, NORMS)
        check_int("width", config.width, 1)
        check_int("n_layers", config.n_layers, 0)
        self.config = config
        self.receptive_field = patchgan_receptive_field(config.n_layers)
        self.trunk, ch = discriminator_trunk(
            config.n_layers + 1, config.width, config.norm, config.spectral_norm, max_mult=8
        )
        self.head = conv2d(ch, 1, 3, 1, 1, spectral_norm=config.spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))

    def extra_repr(self) -> str:
        s = self.config.image_size
        grid = s // 2 ** (self.config.n_layers + 1)
        return f"{grid}x{grid} logits at {s}x{s}, receptive field {self.receptive_field}px"


def build_patchgan_discriminator(config: PatchGANDiscriminatorConfig | None = None) -> PatchGANDiscriminator:
    return PatchGANDiscriminator(config or PatchGANDiscriminatorConfig())


__all__ = [
    "PatchGANDiscriminator",
    "PatchGANDiscriminatorConfig",
    "ResidualBlock",
    "ResnetGenerator",
    "ResnetGeneratorConfig",
    "build_patchgan_discriminator",
    "build_resnet_generator",
    "patchgan_receptive_field",
]
