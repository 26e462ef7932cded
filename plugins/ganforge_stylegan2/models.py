"""StyleGAN2 generator and discriminator (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN"), in plain PyTorch: no custom CUDA kernels, so they run on CPU, CUDA and MPS.

Generator: a mapping network (z -> w, pixel-normalised z, equalised learning rate, a 100x lower
rate in the mapping layers), a tracked average ``w_avg`` of w (a buffer, so it travels in model
checkpoints; it is what the truncation trick pulls towards), and a synthesis network from a learnt
4x4 constant through modulated/demodulated 3x3 convolutions with per-layer noise, in the "skip"
architecture (an RGB output at every resolution, upsampled and summed).

Discriminator: the "residual" architecture: from-RGB at full resolution, residual blocks that
halve the resolution (both branches scaled by 1/sqrt(2)), a minibatch standard deviation feature,
a 3x3 conv and two linear layers down to one logit per image.

Simplifications against the paper's code: resampling is bilinear (up) and 2x2 average pooling
(down) rather than FIR filters, and there is no fp16-specific normalisation of weights/styles.

Widths: the feature maps at resolution ``r`` have ``min(channel_base // r, channel_max)`` channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)
NOISE_MODES = ("random", "const", "none")
MIN_SIZE, MAX_SIZE = 8, 1024


def _lrelu(x: Tensor) -> Tensor:
    """Leaky ReLU (slope 0.2) with gain sqrt(2), so unit-variance inputs stay roughly unit variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // resolution, channel_max)


def _check_widths(image_size: int, channel_base: int, channel_max: int) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_SIZE \
            or image_size > MAX_SIZE or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two from {MIN_SIZE} to {MAX_SIZE} (e.g. 32, 64, 128, 256), "
                         f"got {image_size!r}")
    if channel_max < 1:
        raise ValueError(f"channel_max must be a positive integer, got {channel_max}")
    if channel_base < image_size:
        raise ValueError(f"channel_base must be at least image_size ({image_size}) so every resolution gets a "
                         f"channel (channels at resolution r = min(channel_base // r, channel_max)), got {channel_base}")


# --------------------------------------------------------------------------- equalised-lr layers


class EqualLinear(nn.Module):
    """A linear layer with equalised learning rate: weights are stored ~N(0, 1/lr_mul^2) and scaled
    at run time by ``lr_mul / sqrt(fan_in)`` (He init applied dynamically), so Adam's per-weight
    step sizes are balanced across layers. ``lr_mul`` < 1 slows the layer down (the mapping network)."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        x = F.linear(x, self.weight * self.weight_gain, bias)
        return _lrelu(x) if self.activate else x


class EqualConv2d(nn.Module):
    """A same-padded conv with equalised learning rate; ``down`` halves the resolution first (2x2
    average pooling, a box low-pass filter); ``gain`` scales the output (residual branches)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, bias: bool = True,
                 activate: bool = True, down: bool = False, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2
        self.activate, self.down, self.gain = activate, down, gain

    def forward(self, x: Tensor) -> Tensor:
        if self.down:
            x = F.avg_pool2d(x, 2)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        if self.activate:
            x = _lrelu(x)
        return x * self.gain if self.gain != 1.0 else x


# --------------------------------------------------------------------------- modulated convolution


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True,
                     fused: bool = False) -> Tensor:
    """Convolve each sample of ``x`` [B, I, H, W] with ``weight`` [O, I, k, k] modulated by its
    ``styles`` [B, I] (input channel i scaled by s_i), then, with ``demodulate``, rescale each output
    channel by 1/sqrt(sum_{i,k} (w_oik s_i)^2): the expected output scale is restored for unit-variance
    inputs, which replaces AdaIN's instance normalisation without its droplet artefacts.

    ``fused``: build per-sample weights and run one grouped convolution (the paper's form). Otherwise
    scale the input channels, run a plain batched convolution and scale the output channels: the same
    result, as the modulation and demodulation are per-channel scalings (usually faster on CPU).
    """
    batch, in_ch, height, width = x.shape
    out_ch, _, kh, kw = weight.shape
    styles = styles.to(x.dtype)
    weight = weight.to(x.dtype)
    padding = kh // 2
    if fused:
        w = weight.unsqueeze(0) * styles.view(batch, 1, in_ch, 1, 1)  # [B, O, I, k, k]
        if demodulate:
            w = w * torch.rsqrt(w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, batch * in_ch, height, width), w.reshape(batch * out_ch, in_ch, kh, kw),
                       padding=padding, groups=batch)
        return out.reshape(batch, out_ch, *out.shape[2:])
    out = F.conv2d(x * styles.view(batch, in_ch, 1, 1), weight, padding=padding)
    if demodulate:
        # sum_{i,k} (w_oik s_i)^2 = sum_i s_i^2 * sum_k w_oik^2: a [B, I] x [I, O] product.
        dcoefs = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)
        out = out * dcoefs.view(batch, out_ch, 1, 1)
    return out


class StyleConv(nn.Module):
    """A modulated, demodulated 3x3 conv (optionally after 2x bilinear upsampling), plus per-pixel
    noise with a learnt strength (starting at 0), a bias and the activation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: bool = False,
                 fused: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)  # styles start at 1: plain convolution
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        # A fixed noise image, for deterministic sampling (noise_mode="const").
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.fused, self.resolution = up, fused, resolution

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", noise: Tensor | None = None) -> Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = modulated_conv2d(x, self.weight, self.affine(w), demodulate=True, fused=self.fused)
        if noise is None:
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
            elif noise_mode == "const":
                noise = self.noise_const.to(x.dtype)
        if noise is not None:
            x = x + noise * self.noise_strength.to(x.dtype)
        return _lrelu(x + self.bias.to(x.dtype).view(1, -1, 1, 1))


class ToRGB(nn.Module):
    """A modulated 1x1 conv to RGB, without demodulation (the output's scale is the image's)."""

    def __init__(self, in_channels: int, w_dim: int, *, fused: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.weight_gain = 1.0 / math.sqrt(in_channels)
        self.fused = fused

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=self.fused)
        return x + self.bias.to(x.dtype).view(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    """One resolution doubling: upsampling conv, conv, and this resolution's RGB added to the
    upsampled image so far (skip architecture). Uses three w's: conv0, conv1, to-RGB."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, fused: bool):
        super().__init__()
        self.conv0 = StyleConv(in_channels, out_channels, w_dim, resolution, up=True, fused=fused)
        self.conv1 = StyleConv(out_channels, out_channels, w_dim, resolution, fused=fused)
        self.torgb = ToRGB(out_channels, w_dim, fused=fused)

    def forward(self, x: Tensor, img: Tensor, ws: Tensor, noise_mode: str,
                noise: Sequence[Tensor | None]) -> tuple[Tensor, Tensor]:
        x = self.conv0(x, ws[:, 0], noise_mode, noise[0])
        x = self.conv1(x, ws[:, 1], noise_mode, noise[1])
        img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
        return x, img + self.torgb(x, ws[:, 2]).to(img.dtype)


# --------------------------------------------------------------------------- generator


@dataclass(frozen=True)
class StyleGAN2GeneratorConfig:
    image_size: int = 64  # a power of two; inherited from [data] unless set
    noise_size: int = 512  # dimension of z
    w_dim: int = 512  # dimension of the intermediate latent w
    mapping_layers: int = 2  # depth of the mapping network (the paper: 8; few-shot setups: 2)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping layers
    channel_base: int = 16384  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    w_avg_beta: float = 0.995  # decay of the tracked average of w (updated while training)
    fused_modconv: bool = False  # grouped-conv form of the modulated convs (same result; can be faster on GPUs)

    def __post_init__(self):
        _check_widths(self.image_size, self.channel_base, self.channel_max)
        for key in ("noise_size", "w_dim", "mapping_layers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if not self.mapping_lr_mul > 0:
            raise ValueError(f"mapping_lr_mul must be > 0, got {self.mapping_lr_mul}")
        if not 0.0 <= self.w_avg_beta < 1.0:
            raise ValueError(f"w_avg_beta must be in [0, 1), got {self.w_avg_beta}")


class MappingNetwork(nn.Module):
    """z -> w: pixel-normalise z (unit mean square), then ``layers`` leaky-ReLU linear layers."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.layers = nn.Sequential(*[
            EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activate=True) for i in range(layers)
        ])

    def forward(self, z: Tensor) -> Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        return self.layers(z)


class StyleGAN2Generator(nn.Module):
    """Noise ``[B, noise_size]`` -> images ``[B, 3, image_size, image_size]``.

    - ``mapping(z, truncation=1.0)`` -> ws ``[B, num_ws, w_dim]`` (one w per layer; with truncation
      psi < 1 they are pulled towards ``w_avg``: ``w_avg + psi * (w - w_avg)``);
    - ``synthesis(ws, noise_mode="random")`` -> images, unclamped (roughly [-1, 1] once trained);
    - ``forward(z)`` = both, clamped to [-1, 1] by default. Training passes ``clamp=False`` (the
      discriminator sees raw outputs, as in the paper), ``mix_prob`` (style mixing), ``return_ws``
      (path-length regularisation) and ``update_w_avg``; it then returns ``(images, ws)``.

    ``noise_mode``: "random" draws per-pixel noise from torch's global generator, "const" uses the
    fixed noise images stored with the model (deterministic sampling), "none" leaves noise out.
    """

    multiple_outputs = True  # forward(..., return_ws=True) returns (images, ws)

    def __init__(self, config: StyleGAN2GeneratorConfig):
        super().__init__()
        self.config = config
        c = config
        self.noise_size = c.noise_size
        self.image_size = c.image_size
        self.w_dim = c.w_dim
        levels = int(math.log2(c.image_size))

        def ch(r: int) -> int:
            return channels_at(r, c.channel_base, c.channel_max)

        self.mapping_network = MappingNetwork(c.noise_size, c.w_dim, c.mapping_layers, c.mapping_lr_mul)
        self.register_buffer("w_avg", torch.zeros(c.w_dim))
        self.const = nn.Parameter(torch.randn(ch(4), 4, 4))
        self.conv4 = StyleConv(ch(4), ch(4), c.w_dim, 4, fused=c.fused_modconv)
        self.torgb4 = ToRGB(ch(4), c.w_dim, fused=c.fused_modconv)
        self.blocks = nn.ModuleList(
            SynthesisBlock(ch(2 ** (k - 1)), ch(2**k), c.w_dim, 2**k, c.fused_modconv) for k in range(3, levels + 1)
        )
        # conv4 uses w[0]; the block at 2^k uses w[2k-5], w[2k-4] for its convs and w[2k-3] for its
        # RGB, which the next block's first conv shares (as in the paper's code): 2*log2(size) - 2 ws.
        self.num_ws = 2 * levels - 2
        self.num_noise = 1 + 2 * len(self.blocks)  # noise inputs, one per StyleConv

    # --- mapping --------------------------------------------------------------------------------
    def mapping(self, z: Tensor, truncation: float = 1.0, *, update_w_avg: bool = False) -> Tensor:
        w = self.mapping_network(z)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.config.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation != 1.0:
            ws = self.w_avg.to(ws.dtype).lerp(ws, float(truncation))
        return ws

    def mix_styles(self, ws: Tensor, z: Tensor, prob: float, truncation: float = 1.0) -> Tensor:
        """Style mixing regularisation: with probability ``prob`` per sample, the layers from a random
        cutoff on take the w of a second, independent z (so G cannot assume adjacent styles correlate)."""
        if prob <= 0 or self.num_ws < 2:
            return ws
        batch = ws.shape[0]
        other = self.mapping(torch.randn_like(z), truncation)
        cutoff = torch.randint(1, self.num_ws, (batch,), device=ws.device)
        mixed = torch.rand(batch, device=ws.device) < prob
        cutoff = torch.where(mixed, cutoff, torch.full_like(cutoff, self.num_ws))
        take_other = torch.arange(self.num_ws, device=ws.device).unsqueeze(0) >= cutoff.unsqueeze(1)
        return torch.where(take_other.unsqueeze(2), other, ws)

    # --- synthesis ------------------------------------------------------------------------------
    def synthesis(self, ws: Tensor, noise_mode: str = "random", noise: Sequence[Tensor | None] | None = None) -> Tensor:
        """ws ``[B, num_ws, w_dim]`` -> images (not clamped). ``noise``: optional per-layer noise
        images ``[B or 1, 1, r, r]`` (``num_noise`` of them; None entries follow ``noise_mode``)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        if ws.dim() != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be [B, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        noise = list(noise) if noise is not None else [None] * self.num_noise
        if len(noise) != self.num_noise:
            raise ValueError(f"expected {self.num_noise} noise inputs, got {len(noise)}")
        x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.conv4(x, ws[:, 0], noise_mode, noise[0])
        img = self.torgb4(x, ws[:, 1])
        for i, block in enumerate(self.blocks):
            x, img = block(x, img, ws[:, 2 * i + 1: 2 * i + 4], noise_mode, noise[1 + 2 * i: 3 + 2 * i])
        return img

    def forward(self, z: Tensor, truncation: float = 1.0, *, mix_prob: float = 0.0, noise_mode: str = "random",
                clamp: bool = True, return_ws: bool = False, update_w_avg: bool = False):
        ws = self.mapping(z, truncation, update_w_avg=update_w_avg)
        ws = self.mix_styles(ws, z, mix_prob, truncation)
        img = self.synthesis(ws, noise_mode)
        if clamp:
            img = img.clamp(-1, 1)
        return (img, ws) if return_ws else img


def build_stylegan2_generator(config: StyleGAN2GeneratorConfig | None = None) -> StyleGAN2Generator:
    return StyleGAN2Generator(config or StyleGAN2GeneratorConfig())


# --------------------------------------------------------------------------- discriminator


@dataclass(frozen=True)
class StyleGAN2DiscriminatorConfig:
    image_size: int = 64  # inherited from [data] unless set
    channel_base: int = 16384  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    mbstd_group_size: int = 4  # images per minibatch-stddev group (0: no minibatch-stddev feature)

    def __post_init__(self):
        _check_widths(self.image_size, self.channel_base, self.channel_max)
        if self.mbstd_group_size < 0:
            raise ValueError(f"mbstd_group_size must be >= 0 (0: off), got {self.mbstd_group_size}")


def minibatch_stddev(x: Tensor, group_size: int) -> Tensor:
    """Append one feature map: the standard deviation of each feature across the image's group,
    averaged over features (lets D see a batch's lack of variety). Groups are consecutive runs of
    ``group_size`` images; when the batch does not divide, the leftover images join the last group."""
    batch = x.shape[0]
    size = max(1, min(group_size, batch))
    groups = max(1, batch // size)
    gid = (torch.arange(batch, device=x.device) // size).clamp(max=groups - 1)
    flat = x.reshape(batch, -1).float()
    onehot = F.one_hot(gid, groups).to(flat.dtype)  # [B, G]
    counts = onehot.sum(dim=0).unsqueeze(1)
    mean = onehot.t() @ flat / counts  # [G, F]
    var = onehot.t() @ (flat - mean[gid]).square() / counts
    std = (var + 1e-8).sqrt().mean(dim=1)  # [G]
    feature = std[gid].to(x.dtype).view(batch, 1, 1, 1).expand(batch, 1, x.shape[2], x.shape[3])
    return torch.cat([x, feature], dim=1)


class ResidualBlock(nn.Module):
    """conv 3x3 -> downsample + conv 3x3, plus a downsampled 1x1 skip; both scaled by 1/sqrt(2) so
    the sum keeps the input's scale."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, down=True, gain=math.sqrt(0.5))
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activate=False, down=True,
                                gain=math.sqrt(0.5))

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.conv1(self.conv0(x))


class StyleGAN2Discriminator(nn.Module):
    """Images ``[B, 3, S, S]`` -> one logit per image ``[B]``."""

    def __init__(self, config: StyleGAN2DiscriminatorConfig):
        super().__init__()
        self.config = config
        c = config
        levels = int(math.log2(c.image_size))

        def ch(r: int) -> int:
            return channels_at(r, c.channel_base, c.channel_max)

        self.from_rgb = EqualConv2d(3, ch(c.image_size), 1)
        self.blocks = nn.Sequential(*[ResidualBlock(ch(2**k), ch(2 ** (k - 1))) for k in range(levels, 2, -1)])
        extra = 1 if c.mbstd_group_size > 0 else 0
        self.conv = EqualConv2d(ch(4) + extra, ch(4), 3)
        self.fc = EqualLinear(ch(4) * 16, ch(4), activate=True)
        self.out = EqualLinear(ch(4), 1)

    def forward(self, x: Tensor) -> Tensor:
        size = self.config.image_size
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"this StyleGAN2 discriminator takes {size}x{size} images, got {tuple(x.shape[-2:])}")
        x = self.blocks(self.from_rgb(x))
        if self.config.mbstd_group_size > 0:
            x = minibatch_stddev(x, self.config.mbstd_group_size)
        x = self.conv(x)
        return self.out(self.fc(x.flatten(1))).view(x.shape[0])


def build_stylegan2_discriminator(config: StyleGAN2DiscriminatorConfig | None = None) -> StyleGAN2Discriminator:
    return StyleGAN2Discriminator(config or StyleGAN2DiscriminatorConfig())


__all__ = [
    "EqualConv2d",
    "EqualLinear",
    "StyleGAN2Discriminator",
    "StyleGAN2DiscriminatorConfig",
    "StyleGAN2Generator",
    "StyleGAN2GeneratorConfig",
    "build_stylegan2_discriminator",
    "build_stylegan2_generator",
    "minibatch_stddev",
    "modulated_conv2d",
]
