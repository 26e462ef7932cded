"""Shape and structure tests for the DCGAN and CycleGAN networks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import ganforge_cyclegan
import ganforge_dcgan
from ganforge_cyclegan.models import (
    PatchGANDiscriminator,
    PatchGANDiscriminatorConfig,
    ResnetGenerator,
    ResnetGeneratorConfig,
    build_patchgan_discriminator,
    build_resnet_generator,
    patchgan_receptive_field,
)
from ganforge_dcgan.models import (
    DCGANDiscriminator,
    DCGANDiscriminatorConfig,
    DCGANGenerator,
    DCGANGeneratorConfig,
    build_dcgan_discriminator,
    build_dcgan_generator,
    discriminator_trunk,
)

torch.set_num_threads(1)


def collect(hook) -> dict:
    found = {}

    def register(name, builder, config=None, *, summary=None, aliases=()):
        assert name not in found
        found[name] = (builder, config, summary)

    hook(register)
    return found


def convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


# --------------------------------------------------------------------------- registration


def test_registrations_build_with_default_configs():
    gens = collect(ganforge_dcgan.register_generators) | collect(ganforge_cyclegan.register_generators)
    discs = collect(ganforge_dcgan.register_discriminators) | collect(ganforge_cyclegan.register_discriminators)
    assert set(gens) == {"dcgan", "resnet"}
    assert set(discs) == {"dcgan", "patchgan"}
    for builder, config, summary in [*gens.values(), *discs.values()]:
        assert summary and "\n" not in summary
        assert dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen
        assert isinstance(builder(config()), nn.Module)


def test_config_fields_and_defaults():
    def defaults(cls):
        return {f.name: f.default for f in dataclasses.fields(cls)}

    assert defaults(DCGANGeneratorConfig) == dict(
        image_size=64, noise_size=100, width=32, upsample="convtranspose", norm="batch"
    )
    assert defaults(DCGANDiscriminatorConfig) == dict(image_size=64, width=32, norm="batch", spectral_norm=False)
    assert defaults(ResnetGeneratorConfig) == dict(
        width=32, n_blocks=3, n_downsample=2, norm="instance", upsample="upsample-conv", padding="reflect"
    )
    assert defaults(PatchGANDiscriminatorConfig) == dict(
        image_size=64, width=64, n_layers=3, norm="instance", spectral_norm=False
    )


# --------------------------------------------------------------------------- DCGAN generator


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("upsample", ["convtranspose", "upsample-conv"])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_dcgan_generator_shapes(image_size, upsample, norm):
    g = build_dcgan_generator(
        DCGANGeneratorConfig(image_size=image_size, noise_size=8, width=4, upsample=upsample, norm=norm)
    )
    assert g.noise_size == 8
    out = g(torch.randn(2, 8))
    assert out.shape == (2, 3, image_size, image_size)
    assert out.abs().max() <= 1.0
    has_upsample = any(isinstance(m, nn.Upsample) for m in g.modules())
    assert has_upsample == (upsample == "upsample-conv")
    norm_types = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d}
    if norm in norm_types:
        assert any(isinstance(m, norm_types[norm]) for m in g.modules())
    else:
        assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in g.modules())


def test_dcgan_generator_channel_progression_and_init():
    g = DCGANGenerator(DCGANGeneratorConfig())  # 64x64, width 32
    layers = convs(g)
    assert [m.out_channels for m in layers] == [256, 128, 64, 32, 3]
    first = layers[0]
    assert isinstance(first, nn.ConvTranspose2d) and first.in_channels == 100
    assert (first.kernel_size, first.stride, first.padding) == ((4, 4), (1, 1), (0, 0))
    assert isinstance(list(g.modules())[-1], nn.Tanh)
    weights = torch.cat([m.weight.flatten() for m in layers])
    assert abs(weights.std().item() - 0.02) < 0.002
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 0.01 and 0.01 < bn.std().item() < 0.03


def test_dcgan_generator_128_doubles_from_16w():
    g = DCGANGenerator(DCGANGeneratorConfig(image_size=128, width=4, noise_size=8))
    assert [m.out_channels for m in convs(g)] == [64, 32, 16, 8, 4, 3]


# --------------------------------------------------------------------------- DCGAN discriminator


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("sn", [False, True])
def test_dcgan_discriminator_shapes(image_size, norm, sn):
    d = build_dcgan_discriminator(DCGANDiscriminatorConfig(image_size=image_size, width=4, norm=norm, spectral_norm=sn))
    out = d(torch.randn(3, 3, image_size, image_size))
    assert out.shape == (3,)
    layers = convs(d)
    assert len(layers) == {32: 4, 64: 5, 128: 6}[image_size]
    assert all(parametrize.is_parametrized(m, "weight") == sn for m in layers)
    # No norm right after the first conv.
    trunk = list(d.trunk)
    assert isinstance(trunk[0], nn.Conv2d) and isinstance(trunk[1], nn.LeakyReLU)
    assert trunk[1].negative_slope == 0.2


def test_dcgan_discriminator_spectral_norm_bounds_weights():
    d = DCGANDiscriminator(DCGANDiscriminatorConfig(image_size=32, width=4, norm="none", spectral_norm=True))
    d.train()
    for _ in range(20):  # let the power iteration converge
        d(torch.randn(2, 3, 32, 32))
    for m in convs(d):
        sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_dcgan_discriminator_rejects_wrong_size():
    d = DCGANDiscriminator(DCGANDiscriminatorConfig(image_size=32, width=4))
    with pytest.raises(ValueError, match="32x32"):
        d(torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize(
    "make",
    [
        lambda: DCGANGenerator(DCGANGeneratorConfig(image_size=48)),
        lambda: DCGANGenerator(DCGANGeneratorConfig(norm="group")),
        lambda: DCGANGenerator(DCGANGeneratorConfig(upsample="pixelshuffle")),
        lambda: DCGANDiscriminator(DCGANDiscriminatorConfig(image_size=256)),
        lambda: ResnetGenerator(ResnetGeneratorConfig(padding="circular")),
        lambda: PatchGANDiscriminator(PatchGANDiscriminatorConfig(norm="layer")),
    ],
)
def test_invalid_options_raise(make):
    with pytest.raises(ValueError, match="must be"):
        make()


def test_discriminator_trunk_helper():
    trunk, ch = discriminator_trunk(4, 8, "instance", spectral_norm=False, max_mult=2)
    assert ch == 16
    assert trunk(torch.randn(2, 3, 64, 64)).shape == (2, 16, 4, 4)
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in trunk) == 3


# --------------------------------------------------------------------------- ResNet generator


@pytest.mark.parametrize("upsample", ["convtranspose", "upsample-conv"])
@pytest.mark.parametrize("padding", ["reflect", "zero"])
@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_resnet_generator_options(upsample, padding, norm):
    g = build_resnet_generator(ResnetGeneratorConfig(width=4, n_blocks=1, upsample=upsample, padding=padding, norm=norm))
    out = g(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1.0
    assert any(isinstance(m, nn.ConvTranspose2d) for m in g.modules()) == (upsample == "convtranspose")
    pad_modes = {m.padding_mode for m in g.modules() if isinstance(m, nn.Conv2d)}
    assert pad_modes == {"reflect" if padding == "reflect" else "zeros"}


@pytest.mark.parametrize("hw", [(70, 50), (33, 47), (64, 64), (17, 96)])
def test_resnet_generator_any_size(hw):
    g = ResnetGenerator(ResnetGeneratorConfig(width=4, n_blocks=1))
    x = torch.randn(2, 3, *hw, requires_grad=True)
    out = g(x)
    assert out.shape == (2, 3, *hw)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("n_downsample", [0, 1, 3])
def test_resnet_generator_depth(n_downsample):
    g = ResnetGenerator(ResnetGeneratorConfig(width=4, n_blocks=2, n_downsample=n_downsample))
    assert g(torch.randn(1, 3, 30, 26)).shape == (1, 3, 30, 26)
    strided = [m for m in g.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == n_downsample
    assert sum(1 for m in g.modules() if type(m).__name__ == "ResidualBlock") == 2


def test_resnet_generator_default_structure():
    g = ResnetGenerator(ResnetGeneratorConfig())
    layers = convs(g)
    assert layers[0].kernel_size == (7, 7) and layers[0].out_channels == 32
    assert layers[-1].kernel_size == (7, 7) and layers[-1].out_channels == 3
    assert max(m.out_channels for m in layers) == 128  # two downsamples: 32 -> 64 -> 128


# --------------------------------------------------------------------------- PatchGAN


def test_patchgan_default_outputs_4x4_grid_at_64():
    d = PatchGANDiscriminator(PatchGANDiscriminatorConfig(width=8))
    assert d(torch.randn(2, 3, 64, 64)).shape == (2, 1, 4, 4)
    assert d.receptive_field == patchgan_receptive_field(3) == 78


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
def test_patchgan_depth(n_layers):
    d = build_patchgan_discriminator(PatchGANDiscriminatorConfig(width=4, n_layers=n_layers))
    side = 64 // 2 ** (n_layers + 1)
    assert d(torch.randn(2, 3, 64, 64)).shape == (2, 1, side, side)
    assert sum(1 for m in convs(d) if m.stride == (2, 2)) == n_layers + 1
    # Channels double per layer, capped at 8 * width.
    assert convs(d)[-2].out_channels == 4 * min(2**n_layers, 8)


def test_patchgan_output_does_not_depend_on_image_size_option():
    small = PatchGANDiscriminator(PatchGANDiscriminatorConfig(image_size=32, width=4))
    big = PatchGANDiscriminator(PatchGANDiscriminatorConfig(image_size=256, width=4))
    x = torch.randn(1, 3, 128, 96)
    assert small(x).shape == big(x).shape == (1, 1, 8, 6)


def test_patchgan_receptive_field_matches_gradient_support():
    d = PatchGANDiscriminator(PatchGANDiscriminatorConfig(width=4, n_layers=1, norm="none"))
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    out = d(x)  # [1, 1, 16, 16]
    out[0, 0, 8, 8].backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = support.any(1).nonzero().flatten()
    cols = support.any(0).nonzero().flatten()
    rf = patchgan_receptive_field(1)
    assert rf == 18
    assert rows.max() - rows.min() + 1 == rf
    assert cols.max() - cols.min() + 1 == rf


def test_patchgan_spectral_norm_and_reuses_dcgan_trunk():
    d = PatchGANDiscriminator(PatchGANDiscriminatorConfig(width=4, spectral_norm=True))
    assert all(parametrize.is_parametrized(m, "weight") for m in convs(d))
    ref, _ = discriminator_trunk(4, 4, "instance", spectral_norm=True, max_mult=8)
    assert [type(m).__name__ for m in d.trunk] == [type(m).__name__ for m in ref]
    head = convs(d)[-1]
    assert (head.out_channels, head.kernel_size, head.stride, head.padding) == (1, (3, 3), (1, 1), (1, 1))
    assert "78px" in repr(d)
