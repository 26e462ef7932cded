"""benchmarks/compare.py compares like with like: the plain-PyTorch reference networks have the
documented shapes and sizes, and ganforge's networks built with the benchmark's overrides have the
same convolutions. Where ganforge cannot match the reference exactly, the test pins the difference
down to the parameter, so any other drift fails."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import compare  # noqa: E402
import reference_loops as ref  # noqa: E402

CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def conv_weights(net: nn.Module) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(weight shape, stride) of every conv, in order."""
    return [(tuple(m.weight.shape), tuple(m.stride)) for m in net.modules() if isinstance(m, CONVS)]


def conv_biases(net: nn.Module) -> int:
    return sum(m.bias.numel() for m in net.modules() if isinstance(m, CONVS) and m.bias is not None)


def norm_affine(net: nn.Module) -> int:
    norms = (nn.BatchNorm2d, nn.InstanceNorm2d)
    return sum(p.numel() for m in net.modules() if isinstance(m, norms) for p in m.parameters())


def test_reference_networks_have_the_documented_sizes():
    # pytorch/examples DCGAN (ngf = ndf = 64, nz = 100) and junyanz ResNet-9 / 70x70 PatchGAN (width 64)
    G, D = ref.dcgan_generator(), ref.dcgan_discriminator()
    assert (n_params(G), n_params(D)) == (3_576_704, 2_765_568)
    assert conv_biases(G) == conv_biases(D) == 0
    assert n_params(ref.resnet_generator(64, 9)) == 11_378_179
    assert n_params(ref.patchgan(64, 3)) == 2_764_737
    with torch.no_grad():
        D.eval()
        assert G(torch.randn(2, 100, 1, 1)).shape == (2, 3, 64, 64)
        assert D(torch.randn(2, 3, 64, 64)).shape == (2, 1, 1, 1)
        x = torch.randn(1, 3, 64, 64)
        assert ref.resnet_generator(64, 1)(x).shape == x.shape
        assert ref.patchgan(64, 3)(x).shape == (1, 1, 6, 6)
        assert ref.patchgan(64, 3)(torch.randn(1, 3, 128, 128)).shape == (1, 1, 14, 14)


def test_dcgan_matches_but_for_three_plus_65_biases():
    rG, rD = ref.dcgan_generator(), ref.dcgan_discriminator()
    gG, gD = compare.ganforge_networks(compare.SETUPS["dcgan"])
    assert conv_weights(gG) == conv_weights(rG)
    assert conv_weights(gD) == conv_weights(rD)
    assert norm_affine(gG) == norm_affine(rG) and norm_affine(gD) == norm_affine(rD)
    # ganforge keeps a bias on the last G conv (3) and on D's first and last convs (64 + 1).
    assert (conv_biases(gG), conv_biases(gD)) == (3, 65)
    assert n_params(gG) - n_params(rG) == 3 and n_params(gD) - n_params(rD) == 65


@pytest.mark.parametrize("name", ["cyclegan64", "cyclegan128"])
def test_cyclegan_generator_has_the_same_convolutions(name):
    rG = ref.resnet_generator(64, 9)
    gG, _ = compare.ganforge_networks(compare.SETUPS[name])
    assert conv_weights(gG) == conv_weights(rG)
    # Reference: InstanceNorm without affine, biases on the convs before it (5,248).
    # ganforge: affine InstanceNorm (2 x 5,248), no bias there. Output conv biases (3) in both.
    assert (conv_biases(rG), norm_affine(rG)) == (5_248 + 3, 0)
    assert (conv_biases(gG), norm_affine(gG)) == (3, 2 * 5_248)
    assert n_params(gG) - n_params(rG) == 5_248


@pytest.mark.parametrize("name", ["cyclegan64", "cyclegan128"])
def test_patchgan_differs_only_in_the_last_two_convs(name):
    rD = ref.patchgan(64, 3)
    _, gD = compare.ganforge_networks(compare.SETUPS[name])
    r, g = conv_weights(rD), conv_weights(gD)
    assert g[:3] == r[:3]  # 3 -> 64 -> 128 -> 256, 4x4 stride 2
    # 256 -> 512: stride 1 in the reference, stride 2 in ganforge; head 4x4 vs 3x3.
    assert (r[3], g[3]) == (((512, 256, 4, 4), (1, 1)), ((512, 256, 4, 4), (2, 2)))
    assert (r[4], g[4]) == (((1, 512, 4, 4), (1, 1)), ((1, 512, 3, 3), (1, 1)))
    assert n_params(gD) - n_params(rD) == -512 * 7 + 896  # smaller head; affine IN instead of biases


def test_bad_arguments_are_refused():
    for argv in (["--rounds", "0"], ["--only", "nope"], ["--precision", "fp16"], ["--warmup", "-1"]):
        with pytest.raises(SystemExit):
            compare.parse_args(argv)
