"""StyleGAN2 (plugins/ganforge_stylegan2): the networks at unit level (shapes, demodulation,
minibatch stddev, truncation), a few training steps of both recipes with tiny widths, sampling with
--truncation, a bad option as a one-line error, and exact resume with R1, path-length
regularisation and the EMA all running."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from _cli_helpers import DATA, QUIET, image_size, metrics, ok, one_error_line, pixels, run_cli, tensors
from test_resume import assert_resume_is_exact
from test_train_dcgan import initial_generator

from ganforge_stylegan2.models import (
    StyleGAN2Discriminator,
    StyleGAN2DiscriminatorConfig,
    StyleGAN2Generator,
    StyleGAN2GeneratorConfig,
    minibatch_stddev,
    modulated_conv2d,
)

needs_cats = pytest.mark.skipif(not (DATA / "grumpify-cats" / "grumpy").is_dir(), reason=f"no cat images in {DATA}")


def _widths(base: int, cmax: int = 16) -> list[str]:
    out = []
    for net in ("generator", "discriminator"):
        out += ["--set", f"{net}.channel_base={base}", "--set", f"{net}.channel_max={cmax}"]
    return out + ["--set", "generator.noise_size=16", "--set", "generator.w_dim=16"]


TINY = [*QUIET, "--set", "train.batch_size=4", *_widths(128), "--set", "log.every=1", "--set", "log.num_samples=4",
        "--set", "log.sample_every=2", "--set", "log.checkpoint_every=2", "--set", "eval.every=0"]


def _sets(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]


def _tiny_g(size: int, **kw) -> StyleGAN2Generator:
    return StyleGAN2Generator(StyleGAN2GeneratorConfig(image_size=size, noise_size=16, w_dim=16, channel_base=2 * size,
                                                       channel_max=16, **kw))


# --- networks --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes_and_channel_rule(size):
    torch.manual_seed(0)
    g = _tiny_g(size)
    d = StyleGAN2Discriminator(StyleGAN2DiscriminatorConfig(image_size=size, channel_base=2 * size, channel_max=16))
    levels = int(math.log2(size))
    assert g.num_ws == 2 * levels - 2 and g.noise_size == 16
    z = torch.randn(3, 16)
    ws = g.mapping(z)
    assert ws.shape == (3, g.num_ws, 16)
    raw = g.synthesis(ws)
    assert raw.shape == (3, 3, size, size)
    img = g(z)
    assert img.shape == (3, 3, size, size) and img.min() >= -1 and img.max() <= 1
    # channels at resolution r: min(channel_base // r, channel_max)
    assert g.const.shape[0] == 16 and g.blocks[-1].conv1.weight.shape[0] == min(2 * size // size, 16)
    assert d.from_rgb.weight.shape[0] == 2
    # one logit per image, also for a batch the minibatch-stddev group (4) does not divide
    for batch in (1, 3, 6):
        out = d(torch.rand(batch, 3, size, size) * 2 - 1)
        assert out.shape == (batch,) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="64x64 images"):
        StyleGAN2Discriminator(StyleGAN2DiscriminatorConfig(image_size=64, channel_base=128))(torch.zeros(1, 3, 32, 32))


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="image_size must be a power of two"):
        StyleGAN2GeneratorConfig(image_size=48)
    with pytest.raises(ValueError, match="channel_base must be at least image_size"):
        StyleGAN2DiscriminatorConfig(image_size=128, channel_base=64)
    with pytest.raises(ValueError, match="mapping_layers"):
        StyleGAN2GeneratorConfig(mapping_layers=0)


def test_demodulation_keeps_the_activation_scale():
    torch.manual_seed(0)
    x = torch.randn(4, 64, 16, 16)
    weight = torch.randn(32, 64, 3, 3) * 5
    # styles of very different magnitudes per sample and per channel
    styles = torch.rand(4, 64) * torch.tensor([0.1, 1.0, 10.0, 100.0]).view(4, 1)
    demod = modulated_conv2d(x, weight, styles, demodulate=True)
    per_sample = demod.std(dim=(1, 2, 3))
    assert torch.all((per_sample > 0.85) & (per_sample < 1.1)), per_sample  # ~1 (a bit less at the zero-padded border)
    plain = modulated_conv2d(x, weight, styles, demodulate=False).std(dim=(1, 2, 3))
    assert plain[3] / plain[0] > 500  # without demodulation the style's scale goes straight through
    # the grouped-convolution form computes the same thing
    fused = modulated_conv2d(x, weight, styles, demodulate=True, fused=True)
    torch.testing.assert_close(fused, demod, rtol=1e-4, atol=1e-4)


def test_minibatch_stddev_groups_leftover_images_with_the_last_group():
    torch.manual_seed(0)
    x = torch.randn(10, 2, 4, 4)
    out = minibatch_stddev(x, 4)  # groups: images 0-3, and 4-9 (the leftover 2 join the last group)
    assert out.shape == (10, 3, 4, 4)
    for group in (slice(0, 4), slice(4, 10)):
        expected = (x[group].var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(out[group, 2], expected.expand(out[group, 2].shape))


def test_truncation_pulls_ws_to_the_average_and_style_mixing_switches_layers():
    torch.manual_seed(0)
    g = _tiny_g(32)
    with torch.no_grad():
        g.mapping(torch.randn(64, 16), update_w_avg=True)
    assert g.w_avg.abs().sum() > 0 and "w_avg" in g.state_dict()  # a buffer: stored with the model
    z = torch.randn(8, 16)
    dist = {psi: (g.mapping(z, psi) - g.w_avg).norm(dim=2) for psi in (1.0, 0.7, 0.5)}
    torch.testing.assert_close(dist[0.5], 0.5 * dist[1.0])
    assert torch.all(dist[0.7] < dist[1.0])
    ws = g.mapping(z)
    mixed = g.mix_styles(ws, z, prob=1.0)
    assert torch.equal(mixed[:, 0], ws[:, 0])  # the cutoff is at least 1
    assert all(not torch.equal(mixed[i, -1], ws[i, -1]) for i in range(8))
    assert torch.equal(g.mix_styles(ws, z, prob=0.0), ws)
    # constant noise: deterministic images; random noise: not
    assert torch.equal(g.synthesis(ws, noise_mode="const"), g.synthesis(ws, noise_mode="const"))
    with torch.no_grad():
        for conv in (g.conv4, g.blocks[0].conv0):
            conv.noise_strength.fill_(1.0)
    assert not torch.equal(g.synthesis(ws), g.synthesis(ws))


# --- training --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cats_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("sg2") / "run"
    ok(run_cli("train", "--recipe", "stylegan2-cats", "--steps", 2, "-o", run, *TINY))
    return run


@needs_cats
def test_recipe_is_the_few_shot_setup(tmp_path):
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe
    from ganforge.train.session import TrainRun

    registry = get_registry()
    recipe = load_recipe("stylegan2-cats", registry, [])
    assert recipe.parts["loss"].name == "vanilla"
    assert recipe.algorithm.config.r1_gamma == pytest.approx(0.0002 * 64**2 / 16)
    assert [(a.name, a.config.policy) for a in recipe.augment] == [("diffaug", "color,translation,cutout")]
    assert recipe.train.batch_size == 16 and recipe.parts["generator"].config.image_size == 64
    run = TrainRun(load_recipe("stylegan2-cats", registry, _sets(TINY)), registry, tmp_path / "probe")
    run.build()
    for group in ("generator", "discriminator"):
        opt = run.optimizers[group]
        assert opt.param_groups[0]["betas"] == (0.0, 0.99) and opt.param_groups[0]["lr"] == pytest.approx(0.0025)


@needs_cats
def test_recipe_trains_and_every_generator_weight_moves(cats_run, tmp_path):
    rows = metrics(cats_run)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r[k]) for r in rows for k in ("d_loss", "g_loss", "r1"))
    assert rows[0]["r1"] > 0  # lazy R1 runs at the first step
    start = initial_generator("stylegan2-cats", TINY + ["--set", "train.steps=2"], tmp_path / "probe")
    model = tensors(cats_run / "checkpoints" / "step-00000002" / "model.safetensors")
    end = {k[len("generator."):]: v for k, v in model.items() if k.startswith("generator.")}
    assert sorted(end) == sorted(start)
    fixed = {k for k in start if k.endswith("noise_const")}  # the stored noise images never train
    assert fixed and all(torch.equal(start[k], end[k]) for k in fixed)
    moved = [k for k in start if k not in fixed and not torch.equal(start[k], end[k])]
    assert sorted(moved) == sorted(set(start) - fixed)  # every weight, and w_avg
    assert any(k.startswith("generator_ema.") for k in model)
    assert torch.equal(model["generator_ema.w_avg"], model["generator.w_avg"])


@needs_cats
def test_sample_with_truncation(cats_run, tmp_path, monkeypatch):
    from ganforge.core.components import SampleRequest
    from ganforge.io.inference import load_for_inference
    from ganforge.core.plugins import get_registry

    monkeypatch.chdir(tmp_path)
    grids = {}
    for psi in (0.7, 1.0, 0.5):
        out = tmp_path / f"t{psi}.png"
        ok(run_cli("sample", "--checkpoint", cats_run, "--num", 4, "--truncation", psi, "--output", out))
        grids[psi] = pixels(out)
    assert image_size(tmp_path / "t0.7.png") == (2 * 66 + 2, 2 * 66 + 2)
    assert (grids[1.0] != grids[0.5]).any()

    loaded = load_for_inference(cats_run, get_registry())
    algo, nets = loaded.algorithm, loaded.nets
    assert loaded.capabilities.truncation
    gen = nets["generator_ema"]
    z = torch.randn(16, gen.noise_size, generator=torch.Generator().manual_seed(0))
    dist = {psi: (gen.mapping(z, psi) - gen.w_avg).norm(dim=2).mean() for psi in (1.0, 0.7, 0.5)}
    assert dist[0.5] < dist[0.7] < dist[1.0]
    a, _ = algo.sample(nets, SampleRequest(num=4, seed=3, truncation=0.5))
    b, _ = algo.sample(nets, SampleRequest(num=4, seed=3, truncation=0.5))
    c, _ = algo.sample(nets, SampleRequest(num=4, seed=3))
    assert torch.equal(a, b) and not torch.equal(a, c)  # same seed, same images; truncation changes them


@needs_cats
def test_negative_r1_gamma_is_a_one_line_error(tmp_path):
    out = one_error_line(run_cli("train", "--recipe", "stylegan2-cats", "--steps", 1, "-o", tmp_path / "bad", *TINY,
                                 "--set", "algorithm.r1_gamma=-1"))
    assert "r1_gamma" in out and ">= 0" in out


@needs_cats
def test_resume_is_bit_exact_with_r1_path_length_and_ema(tmp_path):
    args = [*TINY, "--set", "algorithm.pl_weight=2.0", "--set", "algorithm.pl_every=2", "--set",
            "algorithm.r1_every=2", "--set", "log.gif=false", "--set", "log.plots=false"]
    assert_resume_is_exact("stylegan2-cats", args, tmp_path, state_keys=("algo.0.ema.", "algo.0.pl_mean"))
    state = tensors(tmp_path / "split" / "checkpoints" / "step-00000006" / "state.safetensors")
    assert float(state["algo.0.pl_mean"]) > 0  # path-length regularisation ran
    rows = metrics(tmp_path / "split")
    assert len({r["pl_mean"] for r in rows}) > 1 and all(r["r1"] > 0 for r in rows)


def test_pl_mean_round_trips_bit_exact():
    from ganforge_stylegan2.algorithm import StyleGAN2Algorithm, StyleGAN2Config

    a = StyleGAN2Algorithm(StyleGAN2Config(pl_weight=2.0, ema=0.0))
    a.pl_mean = torch.tensor(0.123456789, dtype=torch.float32)
    b = StyleGAN2Algorithm(StyleGAN2Config(pl_weight=2.0, ema=0.0))
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.pl_mean, a.pl_mean) and b.pl_mean is not a.pl_mean


@needs_cats
def test_128_recipe_builds_and_trains_a_step(tmp_path):
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe

    recipe = load_recipe("stylegan2-cats-128", get_registry(), [])
    assert "GPU" in recipe.description and recipe.train.batch_size == 32
    assert recipe.parts["generator"].config.image_size == 128 and recipe.algorithm.config.pl_weight > 0
    run = tmp_path / "run"
    args = [*QUIET, "--set", "train.batch_size=4", *_widths(256), "--set", "log.num_samples=4", "--set", "eval.every=0",
            "--set", "log.gif=false", "--set", "log.plots=false"]
    ok(run_cli("train", "--recipe", "stylegan2-cats-128", "--steps", 1, "-o", run, *args))
    assert [r["step"] for r in metrics(run)] == [1]
    assert image_size(run / "samples" / "step-00000001.png") == (2 * 130 + 2, 2 * 130 + 2)
    model = tensors(run / "checkpoints" / "step-00000001" / "model.safetensors")
    assert model["generator.blocks.4.conv1.noise_const"].shape == (128, 128)
