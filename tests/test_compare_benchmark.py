"""The speed harness (``python -m benchmarks.speed``) compares like with like, and times the way it says.

``compare``: the plain-PyTorch reference networks have the documented shapes and sizes, and
ganforge's networks built with the benchmark's overrides have the same convolutions. Where ganforge
cannot match the reference exactly, the test pins the difference down to the parameter, so any
other drift fails. The shared timing loop (``benchmarks.harness``) counts only the timed steps and
interleaves rounds; every subcommand refuses bad arguments with a usage error; saved results still
print."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from benchmarks import harness, speed
from benchmarks import reference_loops as ref

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
    gG, gD = speed.ganforge_networks(speed.SETUPS["dcgan"])
    assert conv_weights(gG) == conv_weights(rG)
    assert conv_weights(gD) == conv_weights(rD)
    assert norm_affine(gG) == norm_affine(rG) and norm_affine(gD) == norm_affine(rD)
    # ganforge keeps a bias on the last G conv (3) and on D's first and last convs (64 + 1).
    assert (conv_biases(gG), conv_biases(gD)) == (3, 65)
    assert n_params(gG) - n_params(rG) == 3 and n_params(gD) - n_params(rD) == 65


@pytest.mark.parametrize("name", ["cyclegan64", "cyclegan128"])
def test_cyclegan_generator_has_the_same_convolutions(name):
    rG = ref.resnet_generator(64, 9)
    gG, _ = speed.ganforge_networks(speed.SETUPS[name])
    assert conv_weights(gG) == conv_weights(rG)
    # Reference: InstanceNorm without affine, biases on the convs before it (5,248).
    # ganforge: affine InstanceNorm (2 x 5,248), no bias there. Output conv biases (3) in both.
    assert (conv_biases(rG), norm_affine(rG)) == (5_248 + 3, 0)
    assert (conv_biases(gG), norm_affine(gG)) == (3, 2 * 5_248)
    assert n_params(gG) - n_params(rG) == 5_248


@pytest.mark.parametrize("name", ["cyclegan64", "cyclegan128"])
def test_patchgan_differs_only_in_the_last_two_convs(name):
    rD = ref.patchgan(64, 3)
    _, gD = speed.ganforge_networks(speed.SETUPS[name])
    r, g = conv_weights(rD), conv_weights(gD)
    assert g[:3] == r[:3]  # 3 -> 64 -> 128 -> 256, 4x4 stride 2
    # 256 -> 512: stride 1 in the reference, stride 2 in ganforge; head 4x4 vs 3x3.
    assert (r[3], g[3]) == (((512, 256, 4, 4), (1, 1)), ((512, 256, 4, 4), (2, 2)))
    assert (r[4], g[4]) == (((1, 512, 4, 4), (1, 1)), ((1, 512, 3, 3), (1, 1)))
    assert n_params(gD) - n_params(rD) == -512 * 7 + 896  # smaller head; affine IN instead of biases


@pytest.mark.parametrize("argv", [
    ["compare", "--rounds", "0"], ["compare", "--only", "nope"], ["compare", "--precision", "fp16"],
    ["compare", "--warmup", "-1"], ["trainer", "--steps", "0"], ["variants", "cyclegan"], ["variants", "dcgan", "0"],
    ["variants", "dcgan", "10", "fp16"], ["reference", "dcgan", "--steps", "0", "--data", ".", "--out", "x"], [],
])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        speed.parse_args(argv)
    assert exc.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_quick_compare_is_one_short_round():
    args = speed.parse_args(["compare", "--quick", "--only", "dcgan"])
    assert (args.steps, args.warmup, args.rounds, args.wall_steps, args.only) == (2, 1, 1, 1, ["dcgan"])
    args = speed.parse_args(["variants", "cycle64", "10", "bf16"])
    assert (args.family, args.steps, args.bf16) == ("cycle64", 10, "bf16")


def test_timed_rate_times_only_the_timed_steps(monkeypatch):
    calls, clock = [], iter([10.0, 12.5])
    monkeypatch.setattr(harness.time, "perf_counter", lambda: next(clock))

    def step():
        calls.append(1)
        return 4  # images

    assert harness.timed_rate(step, steps=5, warmup=3) == 5 * 4 / 2.5
    assert len(calls) == 8


def test_rounds_interleave_and_alternate():
    order = []
    measures = {name: (lambda name=name: order.append(name) or float(len(order))) for name in ("a", "b")}
    seen = []
    results = harness.interleaved_rounds(measures, 3, alternate=True, report=lambda r, res: seen.append(r))
    assert order == ["a", "b", "b", "a", "a", "b"] and seen == [0, 1, 2]
    assert results == {"a": [1.0, 4.0, 5.0], "b": [2.0, 3.0, 6.0]}
    assert harness.medians(results) == {"a": 4.0, "b": 3.0}


def test_results_json_and_machine_description(tmp_path):
    info = harness.cpu_description()
    assert info["cores"] >= 1 and info["machine"]
    assert harness.cpu_summary(info).startswith(info.get("model") or info["machine"])
    path = harness.write_json(tmp_path / "deep" / "out.json", {"meta": harness.run_meta(threads=1), "x": [1.5]})
    saved = json.loads(path.read_text())
    assert saved["x"] == [1.5] and saved["meta"]["threads"] == 1 and saved["meta"]["torch"] == torch.__version__
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]  # no temporary file left


def test_saved_compare_results_still_print_their_readme_block(tmp_path):
    # the layout `compare --json` has always written: meta, results, summary
    rates = {"reference": [10.0, 11.0], "ganforge": [12.0, 13.0]}
    result = {"images_per_s": rates, "flops_per_image": {"reference": 2e9, "ganforge": 2.1e9},
              "wall_s": {"steps": 4, "reference": 9.5, "ganforge": 8.0}, "timed_steps": 4}
    meta = {"date": "2026-01-01 00:00 UTC", "torch": "2.x", "cpu": "CPU (avx2)", "threads": 2, "precision": "fp32",
            "warmup": 2, "rounds": 2, "workers": 0, "peak_gflop_per_s": {"fp32": 100.0, "bf16": 150.0}}
    saved = {"meta": meta, "results": {"dcgan": result}, "summary": [speed.summarise("dcgan", result, 100.0)]}
    path = harness.write_json(tmp_path / "compare.json", saved)
    text = speed.compare_report(path)
    assert "| dcgan | ganforge | 12.50 | 1.19x | 2.10 | 26.2 | 26.2 | 8.0 (4 steps) |" in text
    assert "reference 10.00 / 11.00, ganforge 12.00 / 13.00" in text
