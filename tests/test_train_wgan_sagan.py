"""WGAN-GP (a recipe of the dcgan family with a Wasserstein critic) and SAGAN (self-attention and
spectral norm): a few training steps, what the networks are made of, sampling from the checkpoint
file alone, exact resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from _cli_helpers import DATA, QUIET, image_size, metrics, ok, one_error_line, run_cli, tensors
from test_resume import assert_resume_is_exact
from test_train_dcgan import assert_generator_changed, initial_generator

pytestmark = pytest.mark.skipif(not (DATA / "grumpify-cats" / "grumpy").is_dir(), reason=f"no cat images in {DATA}")

TINY = [*QUIET, "--set", "train.batch_size=4", "--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "log.every=1", "--set", "log.num_samples=4", "--set", "log.sample_every=3",
        "--set", "log.checkpoint_every=3"]


def _built(recipe: str, args: list[str], tmp: Path):
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe
    from ganforge.train.session import TrainRun

    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    registry = get_registry()
    run = TrainRun(load_recipe(recipe, registry, sets), registry, tmp)
    run.build()
    return run


# --- WGAN-GP -----------------------------------------------------------------------------------------
def test_wgan_gp_recipe_is_the_paper_setup(tmp_path):
    run = _built("wgan-gp-cats", TINY, tmp_path / "probe")
    recipe = run.recipe
    assert recipe.algorithm.config.d_steps == 5 and recipe.algorithm.config.log_wasserstein
    assert recipe.parts["loss"].name == "wgan-gp" and recipe.parts["loss"].config.gp_weight == 10.0
    for group in ("generator", "discriminator"):
        opt = run.optimizers[group]
        assert type(getattr(opt, "optimizer", opt)).__name__ == "Adam"
        assert opt.param_groups[0]["betas"] == (0.0, 0.9) and opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    critic = run.unwrap("discriminator")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())


def test_wgan_gp_trains_and_logs_the_wasserstein_estimate(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "wgan-gp-cats", "--steps", 3, "-o", run, *TINY))
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(r["wasserstein"]) for r in rows)
    assert image_size(run / "losses.png")[0] > 100  # plotted with the losses
    start = initial_generator("wgan-gp-cats", TINY + ["--set", "train.steps=3"], tmp_path / "probe")
    assert_generator_changed(start, run / "checkpoints" / "step-00000003" / "model.safetensors")


def test_wgan_gp_resume_is_bit_exact_with_five_critic_steps(tmp_path):
    args = [*TINY, "--set", "log.sample_every=2", "--set", "log.checkpoint_every=2", "--set", "log.gif=false",
            "--set", "log.plots=false"]
    assert_resume_is_exact("wgan-gp-cats", args, tmp_path, state_keys=("optim.discriminator.",))


# --- SAGAN -------------------------------------------------------------------------------------------
def _attention(net: nn.Module):
    from ganforge_sagan.models import SelfAttention

    return [m for m in net.modules() if isinstance(m, SelfAttention)]


def test_sagan_has_attention_where_asked_and_spectral_norm_everywhere(tmp_path):
    from torch.nn.utils.parametrize import is_parametrized

    run = _built("sagan-cats", TINY, tmp_path / "probe")
    assert run.recipe.parts["loss"].name == "hinge"
    lrs = {g: run.optimizers[g].param_groups[0]["lr"] for g in ("generator", "discriminator")}
    assert lrs == {"generator": pytest.approx(1e-4), "discriminator": pytest.approx(4e-4)}  # TTUR
    for role in ("generator", "discriminator"):
        net = run.unwrap(role)
        assert len(_attention(net)) == 1, role
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        assert convs and all(is_parametrized(m, "weight") for m in convs), role
    # the attention block sits at 32x32: watch the feature map it receives
    seen = []
    gen = run.unwrap("generator")
    _attention(gen)[0].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[-2:])))
    gen(torch.randn(2, gen.noise_size))
    assert seen == [(32, 32)]


def test_sagan_attention_resolution_is_checked():
    from ganforge_sagan.models import SAGANGenerator, SAGANGeneratorConfig

    with pytest.raises(ValueError, match="attention_at must be 0 .* 8, 16, 32, 64; got 24"):
        SAGANGenerator(SAGANGeneratorConfig(attention_at=24))
    assert not _attention(SAGANGenerator(SAGANGeneratorConfig(attention_at=0, width=8)))


def test_sagan_trains_its_attention_and_samples_from_the_file_alone(tmp_path, monkeypatch):
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "sagan-cats", "--steps", 3, "-o", run, *TINY))
    model_file = run / "checkpoints" / "step-00000003" / "model.safetensors"
    start = initial_generator("sagan-cats", TINY + ["--set", "train.steps=3"], tmp_path / "probe")
    end = {k[len("generator."):]: v for k, v in tensors(model_file).items() if k.startswith("generator.")}
    # every learnt weight moved (spectral norm's power-iteration vectors are buffers, not weights:
    # with 1-channel attention projections at this tiny width they are +-1 and stay put)
    weights = [k for k in start if not k.endswith(("._u", "._v")) and "running" not in k and start[k].is_floating_point()]
    assert weights and all(not torch.equal(start[k], end[k]) for k in weights)
    gammas = {k: v for k, v in tensors(model_file).items() if k.endswith("gamma")}
    assert gammas and all(float(v) != 0.0 for v in gammas.values())  # attention learnt from 0
    alone = tmp_path / "only"
    alone.mkdir()
    model = shutil.copy(model_file, alone / "model.safetensors")
    monkeypatch.chdir(tmp_path)
    grid = tmp_path / "grid.png"
    ok(run_cli("sample", "--checkpoint", model, "--num", 4, "--output", grid,
               env={"GANFORGE_DATA": str(tmp_path / "no-data-here")}))
    assert image_size(grid) == (2 * 66 + 2, 2 * 66 + 2)


def test_sagan_resume_is_bit_exact_with_spectral_norm_state(tmp_path):
    args = [*TINY, "--set", "log.sample_every=2", "--set", "log.checkpoint_every=2", "--set", "log.gif=false",
            "--set", "log.plots=false"]
    assert_resume_is_exact("sagan-cats", args, tmp_path, state_keys=("optim.generator.",))
    model = tensors(tmp_path / "split" / "checkpoints" / "step-00000006" / "model.safetensors")
    assert any("parametrizations.weight.original" in k for k in model)
