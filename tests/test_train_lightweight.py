"""The lightweight (FastGAN) family: network shapes at every size, skip-layer excitation, the
self-supervised discriminator's reconstructions, a few training steps of its recipes, sampling from
the checkpoint file alone, config errors and exact resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from _cli_helpers import DATA, QUIET, image_size, metrics, ok, one_error_line, pixels, run_cli, tensors
from test_resume import assert_resume_is_exact
from test_train_dcgan import assert_generator_changed, initial_generator

from ganforge_lightweight.algorithm import reconstruction_loss, seeded_rng
from ganforge_lightweight.models import (
    LightweightDiscriminator,
    LightweightDiscriminatorConfig,
    LightweightGenerator,
    LightweightGeneratorConfig,
    SkipLayerExcitation,
    quadrant,
)

needs_cats = pytest.mark.skipif(not (DATA / "grumpify-cats" / "grumpy").is_dir(), reason=f"no cat images in {DATA}")

TINY = [*QUIET, "--set", "train.batch_size=4", "--set", "generator.width=4", "--set", "discriminator.width=4",
        "--set", "generator.noise_size=16", "--set", "log.every=1", "--set", "log.num_samples=4",
        "--set", "log.sample_every=2", "--set", "log.checkpoint_every=2", "--set", "log.gif=false",
        "--set", "log.plots=false"]


def _nets(size: int, width: int = 4):
    g = LightweightGenerator(LightweightGeneratorConfig(image_size=size, width=width, noise_size=16))
    d = LightweightDiscriminator(LightweightDiscriminatorConfig(image_size=size, width=width))
    return g, d


# --- the networks -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "pairs"), [(32, [(4, 32)]), (64, [(4, 32), (8, 64)]),
                                             (128, [(4, 32), (8, 64), (16, 128)])])
def test_shapes_and_sle_pairs_at_each_size(size, pairs):
    torch.manual_seed(0)
    g, d = _nets(size)
    assert g.sle_pairs == pairs and sorted(map(int, g.sle)) == [high for _, high in pairs]
    x = g(torch.randn(3, 16))
    assert x.shape == (3, 3, size, size) and x.min() >= -1 and x.max() <= 1
    logits = d(x)
    assert logits.shape == (3, 1, 5, 5)
    out = d(x, reconstruct=True)
    assert len(out) == 4 and type(d).multiple_outputs
    logits2, whole, part, index = out
    recon = size // 2
    assert logits2.shape == (3, 1, 5, 5)
    assert whole.shape == part.shape == (3, 3, recon, recon)
    assert index.dtype == torch.int64 and index.shape == (3,) and bool(((index >= 0) & (index < 4)).all())
    targets = d.reconstruction_targets(x, index)
    assert [t.shape for t in targets] == [whole.shape, part.shape]
    with pytest.raises(ValueError, match=f"takes {size}x{size} images"):
        d(torch.zeros(1, 3, size * 2, size * 2))


def test_config_validation_names_the_key():
    with pytest.raises(ValueError, match="image_size must be one of 32, 64, 128, 256, got 48"):
        LightweightGeneratorConfig(image_size=48)
    with pytest.raises(ValueError, match="multipliers must list 5 values at image_size 64"):
        LightweightGeneratorConfig(multipliers=(1.0, 1.0))
    with pytest.raises(ValueError, match="width must be a positive integer"):
        LightweightDiscriminatorConfig(width=0)
    # explicit multipliers set the channels per resolution
    g = LightweightGenerator(LightweightGeneratorConfig(image_size=32, width=4, multipliers=(4, 3, 2, 1)))
    assert g.channels == {4: 16, 8: 12, 16: 8, 32: 4}


def test_sle_gates_are_in_0_1_and_change_the_output():
    torch.manual_seed(0)
    sle = SkipLayerExcitation(8, 6, spectral_norm=True).eval()  # eval: no power iteration between calls
    low, high = torch.randn(5, 8, 4, 4) * 3, torch.randn(5, 6, 16, 16)
    gates = sle.gates(low)
    assert gates.shape == (5, 6, 1, 1) and bool(((gates > 0) & (gates < 1)).all())
    assert gates.std() > 0  # per image and channel, not one constant
    torch.testing.assert_close(sle(low, high), high * gates)

    g, _ = _nets(64)
    g.eval()
    z = torch.randn(4, 16)
    seen = []

    def check(module, inputs, output):
        low, high = inputs
        gates = module.gates(low)
        seen.append((tuple(low.shape[-2:]), tuple(high.shape[-2:])))
        assert bool(((gates > 0) & (gates < 1)).all())
        torch.testing.assert_close(output, high * gates)

    handles = [m.register_forward_hook(check) for m in g.sle.values()]
    with seeded_rng(0):
        gated = g(z)
    for h in handles:
        h.remove()
    assert sorted(seen) == [((4, 4), (32, 32)), ((8, 8), (64, 64))]
    for m in g.sle.values():  # the same network with its gates bypassed
        m.forward = lambda low, high: high
    with seeded_rng(0):
        bypassed = g(z)
    # (an untrained G in eval mode has tiny outputs: compare relative to them)
    assert (gated - bypassed).abs().mean() > 0.1 * gated.abs().mean()


def test_reconstruction_targets_quadrants_and_gradient_reach_the_decoders():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    part = torch.tensor([1, 2])
    torch.testing.assert_close(quadrant(x, part), torch.stack([x[0, :, :4, 4:], x[1, :, 4:, :4]]))

    torch.manual_seed(0)
    _, d = _nets(64)
    real = torch.rand(4, 3, 64, 64) * 2 - 1
    torch.manual_seed(1)
    out = d(real, reconstruct=True)
    torch.manual_seed(1)
    assert torch.equal(d(real, reconstruct=True)[3], out[3])  # quadrants come from the global RNG
    whole, piece = d.reconstruction_targets(real, out[3])
    torch.testing.assert_close(whole, torch.nn.functional.avg_pool2d(real, 2))
    torch.testing.assert_close(piece, quadrant(real, out[3]))  # 32x32 quadrant: already the decoder's size

    d.zero_grad()
    reconstruction_loss(d, real, out).backward()
    for name, decoder in (("whole", d.decoder_whole), ("part", d.decoder_part)):
        grads = [p.grad for p in decoder.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name
    stem = next(d.stem.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0  # the encoder learns from it too
    assert all(p.grad is None for p in d.head.parameters())  # the real/fake head does not


# --- training through the CLI ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cats_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("lightweight") / "run"
    ok(run_cli("train", "--recipe", "lightweight-cats", "--steps", 2, "-o", run, *TINY))
    return run


@needs_cats
def test_recipe_trains_logs_reconstruction_and_changes_the_generator(cats_run, tmp_path):
    rows = metrics(cats_run)
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert all(np.isfinite(r[k]) for k in ("d_loss", "g_loss", "recon_loss"))
        assert r["recon_loss"] > 0
    model_file = cats_run / "checkpoints" / "step-00000002" / "model.safetensors"
    start = initial_generator("lightweight-cats", TINY + ["--set", "train.steps=2"], tmp_path / "probe")
    assert_generator_changed(start, model_file)
    model = tensors(model_file)
    assert any(k.startswith("generator_ema.") for k in model)
    assert not any(k.startswith("discriminator.") for k in model)  # inference needs G only


@needs_cats
def test_sample_from_the_checkpoint_file_alone_is_reproducible(cats_run, tmp_path, monkeypatch):
    alone = tmp_path / "only"
    alone.mkdir()
    model = shutil.copy(cats_run / "checkpoints" / "step-00000002" / "model.safetensors", alone / "model.safetensors")
    monkeypatch.chdir(tmp_path)
    env = {"GANFORGE_DATA": str(tmp_path / "no-data-here")}
    grids = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        grids[name] = tmp_path / f"{name}.png"
        walk = ["--interpolate", tmp_path / "walk.gif"] if name == "a" else []
        ok(run_cli("sample", "--checkpoint", model, "--num", 4, "--seed", seed, "--output", grids[name], *walk, env=env))
    from PIL import Image

    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 64  # 4 latents, 16 frames between each and the next
    assert image_size(grids["a"]) == (2 * 66 + 2, 2 * 66 + 2)
    # the injected noise is seeded with the latents: same seed, same pixels; another seed differs
    assert np.array_equal(pixels(grids["a"]), pixels(grids["b"]))
    assert not np.array_equal(pixels(grids["a"]), pixels(grids["c"]))


@needs_cats
def test_negative_recon_weight_is_a_one_line_error(tmp_path):
    result = run_cli("train", "--recipe", "lightweight-cats", "--steps", 1, "-o", tmp_path / "run", *TINY,
                     "--set", "algorithm.recon_weight=-1")
    out = one_error_line(result)
    assert "recon_weight" in out and "-1" in out


@needs_cats
def test_resume_is_bit_exact_with_ema_and_reconstruction(tmp_path):
    assert_resume_is_exact("lightweight-cats", TINY, tmp_path, state_keys=("algo.0.ema.", "optim.discriminator."))


@needs_cats
def test_128_recipe_builds_and_trains_a_step(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "lightweight-cats-128", "--steps", 1, "-o", run, *TINY,
               "--set", "log.sample_every=1", "--set", "log.checkpoint_every=1"))
    assert [r["step"] for r in metrics(run)] == [1]
    grid = run / "samples" / "step-00000001.png"
    assert image_size(grid) == (2 * 130 + 2, 2 * 130 + 2)  # 4 samples of 128x128
    model = tensors(run / "checkpoints" / "step-00000001" / "model.safetensors")
    assert "generator.to_rgb.bias" in model


@needs_cats
def test_real_scores_feed_ada(tmp_path):
    # ADA re-estimates r_t = E[sign(D(real))] after every D update (interval 1): it only can if the
    # algorithm reports D's scores; all 25 patch logits of the 4 images vote, so r_t is k/100.
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "lightweight-cats", "--steps", 2, "-o", run, *TINY, "--set", "augment.ada.interval=1"))
    rows = metrics(run)
    assert all(r["ada_rt"] != 0.0 and abs(r["ada_rt"] * 100 - round(r["ada_rt"] * 100)) < 1e-9 for r in rows), rows


@needs_cats
def test_a_discriminator_without_decoders_is_refused(tmp_path):
    out = one_error_line(run_cli("train", "--recipe", "lightweight-cats", "--steps", 1, "-o", tmp_path / "run", *TINY,
                                 "--set", "discriminator.name=dcgan"))
    assert "'lightweight' algorithm" in out and "DCGANDiscriminator" in out


@pytest.mark.parametrize(("recipe", "size", "width"), [("lightweight-cats", 64, 8), ("lightweight-cats-128", 128, 32)])
def test_recipes_follow_the_paper_where_they_can(recipe, size, width):
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe

    r = load_recipe(recipe, get_registry())
    assert r.algorithm.name == "lightweight" and r.algorithm.config.ema == 0.999 and r.algorithm.config.recon_weight > 0
    assert r.parts["loss"].name == "hinge"
    assert [(a.name, a.config.policy) for a in r.augment] == [("diffaug", "color,translation,cutout")]
    for group in ("generator", "discriminator"):
        opt = r.optim[group].optimizer
        assert opt.name == "adam" and opt.config.lr == pytest.approx(2e-4) and tuple(opt.config.betas) == (0.5, 0.999)
    assert r.parts["generator"].config.image_size == size and r.parts["generator"].config.width == width
    assert r.train.batch_size == 16
    assert "LPIPS" in r.description  # says that the reconstruction loss is a pixel stand-in
    assert r.eval.every * 4 == r.train.steps and r.eval.every % r.log.checkpoint_every == 0
