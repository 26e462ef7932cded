"""Layers several families share: DCGAN initialisation, a (spectral-normed) conv, a norm chooser and
the DCGAN discriminator trunk (PatchGAN, the projection discriminator and pix2pix's D build on it)."""

from __future__ import annotations

from typing import Literal

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

Norm = Literal["batch", "instance", "none"]
NORMS = ("batch", "instance", "none")


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
