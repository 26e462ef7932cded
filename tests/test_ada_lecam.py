"""ADA (adaptive discriminator augmentation) and the LeCam regulariser: the augmentation's
properties and adaptation rule, the regulariser against hand-computed values, and both in real
training runs (logged values, exact resume)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from _cli_helpers import DATA, metrics, ok, one_error_line, run_cli, tensors
from ganforge_augment.ada import ADA, ADAConfig
from ganforge_losses.losses import (
    HingeConfig,
    HingeLoss,
    LSGANConfig,
    LSGANLoss,
    VanillaConfig,
    VanillaGANLoss,
    WGANGPConfig,
    WGANGPLoss,
    build_hinge,
)

torch.set_num_threads(1)

CATS = pytest.mark.skipif(not (DATA / "grumpify-cats" / "grumpy").is_dir(), reason=f"no cat images in {DATA}")


def images(b=8, c=3, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g) * 2 - 1


# --------------------------------------------------------------------------- ADA: configuration


def test_ada_config_defaults_and_validation():
    defaults = {f.name: f.default for f in dataclasses.fields(ADAConfig)}
    assert defaults == dict(target=0.6, initial_p=0.0, max_p=1.0, interval=4, speed_images=100_000,
                            policy="blit,geom,color", adjust=True)
    for options, key in [(dict(target=1.5), "target must be in (0, 1), got 1.5"), (dict(target=0.0), "target"),
                         (dict(max_p=1.2), "max_p"), (dict(initial_p=0.5, max_p=0.4), "initial_p"),
                         (dict(interval=0), "interval"), (dict(speed_images=0), "speed_images"),
                         (dict(policy="blit,shear"), "policy"), (dict(policy=" , "), "policy")]:
        with pytest.raises(ValueError, match=key.replace("(", r"\(").replace(")", r"\)")):
            ADAConfig(**options)
    assert ADA(ADAConfig(policy=" color , blit ")).groups == ("color", "blit")
    assert ADA().stage == "step"


def test_ada_bad_target_is_one_cli_error_naming_the_key(tmp_path):
    out = one_error_line(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", tmp_path / "r",
                                 "--no-progress", "--set", "augment.ada.target=1.5"))
    assert "target must be in (0, 1), got 1.5" in out and "augment.ada.target" in out


# --------------------------------------------------------------------------- ADA: adapting p


def test_ada_p_rises_when_d_is_overconfident_and_falls_otherwise():
    ada = ADA(ADAConfig(interval=2, speed_images=80, max_p=0.5))
    assert ada.log_values() == {"ada_p": 0.0, "ada_rt": 0.0}
    ada.observe(torch.ones(4))  # one observation: no adjustment before `interval` of them
    assert ada.p == 0.0
    ada.observe(torch.tensor([1.0, 2.0, 3.0, -1.0]))  # r_t = (4 + 2) / 8 = 0.75 > 0.6
    assert ada.p == pytest.approx(8 / 80) and ada.log_values()["ada_rt"] == pytest.approx(0.75)
    for _ in range(20):  # keeps rising with an overconfident D, but never past max_p
        ada.observe(torch.full((4,), 5.0))
        assert 0.0 <= ada.p <= 0.5
    assert ada.p == 0.5
    for _ in range(4):  # r_t = 0 < 0.6: falls by 8/80 per adjustment
        ada.observe(torch.tensor([1.0, -1.0, 2.0, -2.0]))
    assert ada.p == pytest.approx(0.5 - 2 * 8 / 80) and ada.log_values()["ada_rt"] == 0.0
    for _ in range(40):  # never below 0
        ada.observe(-torch.ones(4))
        assert 0.0 <= ada.p <= 0.5
    assert ada.p == 0.0 and ada.log_values()["ada_rt"] == -1.0


def test_ada_counts_images_not_patches_and_can_be_fixed():
    ada = ADA(ADAConfig(interval=1, speed_images=100))
    ada.observe(torch.ones(4, 1, 5, 5))  # a patch discriminator: 4 images, 100 votes
    assert ada.p == pytest.approx(0.04)
    fixed = ADA(ADAConfig(initial_p=0.3, interval=1, adjust=False))
    fixed.observe(torch.ones(16))
    assert fixed.p == 0.3 and fixed.log_values()["ada_rt"] == 1.0  # r_t is still measured


def test_ada_state_dict_round_trip_is_exact():
    ada = ADA(ADAConfig(interval=3, speed_images=70))
    for i in range(7):  # 2 adjustments done, 1 observation pending
        ada.observe(torch.randn(5, generator=torch.Generator().manual_seed(i)) + 1)
    state = ada.state_dict()
    assert set(state) == {"p", "rt", "sign_sum", "count", "seen", "observations"}
    assert state["p"].dtype == torch.float64 and state["sign_sum"].dtype == torch.int64
    assert state["observations"].item() == 1 and state["seen"].item() == 5
    other = ADA(ADAConfig(interval=3, speed_images=70))
    other.load_state_dict({k: v.clone() for k, v in state.items()})
    assert other.p == ada.p and other.log_values() == ada.log_values()
    for i in range(5):  # both continue identically
        scores = torch.randn(5, generator=torch.Generator().manual_seed(100 + i))
        ada.observe(scores)
        other.observe(scores)
        assert other.p == ada.p
    with pytest.raises(KeyError, match="p"):
        other.load_state_dict({"rt": state["rt"]})


# --------------------------------------------------------------------------- ADA: the augmentation


def test_ada_at_p_zero_is_the_identity():
    x = images()
    assert ADA()(x) is x
    assert ADA(ADAConfig(initial_p=0.0, policy="color"))(x) is x


def test_ada_leaves_untouched_images_bit_identical():
    # At a small p most images draw no transform: those must pass through exactly, with no
    # resampling blur; the others change.
    x = images(b=64)
    torch.manual_seed(0)
    out = ADA(ADAConfig(initial_p=0.03))(x)
    same = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert 10 < sum(same) < len(x)


def test_ada_at_p_one_changes_images_keeps_shape_dtype_and_passes_gradients():
    x = images(b=6, h=12, w=20).requires_grad_(True)  # non-square
    torch.manual_seed(0)
    out = ADA(ADAConfig(initial_p=1.0))(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert all(not torch.allclose(out[i], x[i]) for i in range(len(x)))
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and (x.grad.abs().flatten(1).sum(1) > 0).all()

    half = images(b=3).bfloat16()
    assert ADA(ADAConfig(initial_p=1.0))(half).dtype == torch.bfloat16
    # Under autocast the transform matrices stay float32: the same draws give the same images.
    plain = images(b=3)
    torch.manual_seed(2)
    expected = ADA(ADAConfig(initial_p=1.0))(plain)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(2)
        assert torch.equal(ADA(ADAConfig(initial_p=1.0))(plain), expected)
    assert ADA(ADAConfig(initial_p=1.0))(images(b=1, h=1, w=1)).shape == (1, 3, 1, 1)


def test_ada_same_seed_same_output():
    x = images()
    ada = ADA(ADAConfig(initial_p=0.7))
    torch.manual_seed(5)
    a = ada(x)
    torch.manual_seed(5)
    b = ada(x)
    torch.manual_seed(6)
    c = ada(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_ada_blit_only_moves_pixels():
    # Flips, quarter turns and whole-pixel shifts (with reflection) only rearrange pixels: each
    # output pixel is one of the input's, up to float rounding of the sampling grid.
    x = images(b=8, h=16, w=16)
    torch.manual_seed(3)
    out = ADA(ADAConfig(initial_p=1.0, policy="blit"))(x)
    for i in range(len(x)):
        src, dst = x[i].flatten(1).T, out[i].flatten(1).T  # [pixels, rgb]
        nearest = (dst[:, None, :] - src[None, :, :]).abs().amax(-1).min(1).values
        assert nearest.max() < 1e-4
    assert not torch.equal(out, x)


def test_ada_color_is_one_affine_colour_map_per_image():
    # Colour transforms act per pixel through one 4x4 matrix per image: out = A x + c exactly, no
    # spatial change. Fit A, c by least squares on each image and check the residual; images in
    # pix2pix pairs (6 channels) get the same map for both RGB triples.
    x = images(b=6, c=6, h=8, w=8)
    torch.manual_seed(1)
    out = ADA(ADAConfig(initial_p=1.0, policy="color"))(x)
    for i in range(len(x)):
        src = x[i].view(2, 3, -1).permute(0, 2, 1).reshape(-1, 3).double()
        dst = out[i].view(2, 3, -1).permute(0, 2, 1).reshape(-1, 3).double()
        design = torch.cat([src, torch.ones(len(src), 1, dtype=torch.float64)], 1)
        fit = torch.linalg.lstsq(design, dst).solution
        assert (design @ fit - dst).abs().max() < 1e-4
    assert not torch.allclose(out, x)
    with pytest.raises(ValueError, match="policy"):
        ADA(ADAConfig(initial_p=1.0, policy="color"))(images(c=4))
    assert ADA(ADAConfig(initial_p=1.0, policy="geom"))(images(c=4)).shape[1] == 4


def test_ada_geometry_preserves_the_image_statistics_roughly():
    # Reflection padding, no zero fill: a constant image stays constant under any geometry.
    x = torch.full((4, 3, 10, 10), 0.25)
    torch.manual_seed(0)
    out = ADA(ADAConfig(initial_p=1.0, policy="blit,geom"))(x)
    assert torch.allclose(out, x, atol=1e-5)


# --------------------------------------------------------------------------- LeCam


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_lecam_options_on_every_loss_and_validation():
    for config in (LSGANConfig, VanillaConfig, HingeConfig, WGANGPConfig):
        fields = {f.name: f.default for f in dataclasses.fields(config)}
        assert fields["lecam"] == 0.0 and fields["lecam_decay"] == 0.99
        with pytest.raises(ValueError, match="lecam must be >= 0, got -0.1"):
            config(lecam=-0.1)
        with pytest.raises(ValueError, match="lecam_decay"):
            config(lecam_decay=1.0)
    assert isinstance(build_hinge(None), HingeLoss) and build_hinge(None).lecam_weight == 0.0
    assert build_hinge(HingeConfig(lecam=0.2)).lecam_weight == 0.2


def test_lecam_negative_weight_is_one_cli_error(tmp_path):
    out = one_error_line(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", tmp_path / "r",
                                 "--no-progress", "--set", "loss.lecam=-1"))
    assert "lecam must be >= 0" in out and "loss.lecam" in out


def test_lecam_zero_weight_leaves_every_loss_unchanged():
    real, fake = t(0.3, 1.2, -0.4), t(-0.8, 0.5, 0.1)
    plain = {"lsgan": 0.5 * ((0.7**2 + 0.2**2 + 1.4**2) / 3) + 0.5 * ((0.64 + 0.25 + 0.01) / 3),
             "hinge": (0.7 + 0.0 + 1.4) / 3 + (0.2 + 1.5 + 1.1) / 3,
             "wgan": (-0.8 + 0.5 + 0.1) / 3 - (0.3 + 1.2 - 0.4) / 3}
    losses = {"lsgan": LSGANLoss(), "hinge": HingeLoss(), "wgan": WGANGPLoss(), "vanilla": VanillaGANLoss()}
    for name, loss in losses.items():
        first = loss.d_loss(real, fake)
        assert torch.equal(loss.d_loss(real, fake), first)  # no state
        if name in plain:
            assert first.item() == pytest.approx(plain[name], rel=1e-6)
        assert loss.state_dict() == {} and loss.log_values() == {}


def test_lecam_regulariser_against_a_hand_computation():
    loss = HingeLoss(HingeConfig(lecam=0.5, lecam_decay=0.9))
    plain = HingeLoss()
    real1, fake1 = t(0.5, 1.5, -0.2, 0.2), t(-0.5, 0.4, 0.1, -1.0)
    # First call: the averages start at the batch means.
    ema_r, ema_f = (0.5 + 1.5 - 0.2 + 0.2) / 4, (-0.5 + 0.4 + 0.1 - 1.0) / 4  # 0.5, -0.25
    reg = sum(max(r - ema_f, 0.0) ** 2 for r in (0.5, 1.5, -0.2, 0.2)) / 4 + \
        sum(max(ema_r - f, 0.0) ** 2 for f in (-0.5, 0.4, 0.1, -1.0)) / 4
    got = loss.d_loss(real1, fake1).item()
    assert got == pytest.approx(plain.d_loss(real1, fake1).item() + 0.5 * reg, rel=1e-6)
    assert loss.log_values() == pytest.approx({"lecam_real": ema_r, "lecam_fake": ema_f})
    assert bool(loss.lecam_initialized)

    # Second call: the averages decay towards the new means first, then R uses them.
    real2, fake2 = t(2.0, 1.0), t(0.0, 1.0)
    ema_r, ema_f = 0.9 * ema_r + 0.1 * 1.5, 0.9 * ema_f + 0.1 * 0.5
    reg = sum(max(r - ema_f, 0.0) ** 2 for r in (2.0, 1.0)) / 2 + sum(max(ema_r - f, 0.0) ** 2 for f in (0.0, 1.0)) / 2
    assert loss.d_loss(real2, fake2).item() == pytest.approx(plain.d_loss(real2, fake2).item() + 0.5 * reg, rel=1e-6)
    assert loss.log_values() == pytest.approx({"lecam_real": ema_r, "lecam_fake": ema_f})
    assert loss.lecam_penalty(real2, fake2).item() == pytest.approx(reg, rel=1e-6)

    # The same term on every built-in loss (here LSGAN on patch outputs).
    ls, ls_plain = LSGANLoss(LSGANConfig(lecam=0.1)), LSGANLoss()
    r, f = torch.full((2, 1, 3, 3), 0.8), torch.full((2, 1, 3, 3), 0.3)
    # ema_real = 0.8, ema_fake = 0.3: relu(0.8 - 0.3)^2 + relu(0.8 - 0.3)^2 = 0.5
    assert ls.d_loss(r, f).item() == pytest.approx(ls_plain.d_loss(r, f).item() + 0.1 * 0.5, rel=1e-6)


def test_lecam_buffers_update_travel_and_freeze_in_eval():
    loss = VanillaGANLoss(VanillaConfig(lecam=0.3, lecam_decay=0.5))
    assert set(loss.state_dict()) == {"lecam_ema_real", "lecam_ema_fake", "lecam_initialized"}
    assert not bool(loss.lecam_initialized)
    loss.d_loss(t(1.0, 3.0), t(-2.0, 0.0))
    loss.d_loss(t(0.0, 0.0), t(1.0, 1.0))
    assert loss.log_values() == pytest.approx({"lecam_real": 0.5 * 2.0 + 0.5 * 0.0, "lecam_fake": 0.5 * -1.0 + 0.5})

    fresh = VanillaGANLoss(VanillaConfig(lecam=0.3, lecam_decay=0.5))
    fresh.load_state_dict(loss.state_dict())
    real, fake = t(0.4, -0.3), t(0.2, 0.9)
    assert torch.equal(fresh.d_loss(real, fake), loss.d_loss(real, fake))
    assert fresh.log_values() == loss.log_values()

    loss.eval()
    before = dict(loss.log_values())
    loss.d_loss(t(9.0), t(-9.0))
    assert loss.log_values() == before


def test_lecam_gradient_reaches_d_outputs_but_not_the_averages():
    loss = WGANGPLoss(WGANGPConfig(lecam=1.0))
    real = t(1.0, 2.0).requires_grad_(True)
    fake = t(-1.0, 0.0).requires_grad_(True)
    loss.d_loss(real, fake).backward()
    # ema_real = 1.5, ema_fake = -0.5; d/d real_i of mean(relu(real - ema_fake)^2) = (real_i + 0.5);
    # WGAN's own term gives -1/2 per real, +1/2 per fake; d/d fake_i of mean(relu(1.5 - fake)^2) = -(1.5 - fake_i)
    assert real.grad.tolist() == pytest.approx([-0.5 + 1.5, -0.5 + 2.5])
    assert fake.grad.tolist() == pytest.approx([0.5 - 2.5, 0.5 - 1.5])
    assert not loss.lecam_ema_real.requires_grad


# --------------------------------------------------------------------------- in training

TINY = ["--no-progress", "--set", "train.threads=1", "--set", "train.batch_size=4", "--set", "generator.width=8",
        "--set", "discriminator.width=8", "--set", "log.every=1", "--set", "log.num_samples=4",
        "--set", "log.sample_every=3", "--set", "log.checkpoint_every=3"]
# p moves by 4 images / 40 = 0.1 at every discriminator update, so it visibly adapts within a few steps.
FAST_ADA = ["--set", "augment.ada.interval=1", "--set", "augment.ada.speed_images=40"]


@CATS
def test_ada_and_lecam_train_with_diffaug_and_log_every_step(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-cats", "--steps", 4, "-o", run, *TINY, *FAST_ADA,
               "--set", "augment.ada.target=0.6", "--set", "loss.lecam=0.1"))
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import recipe_from_toml

    written = recipe_from_toml((run / "recipe.toml").read_text(), get_registry())
    assert [a.name for a in written.augment] == ["deluxe", "diffaug", "ada"]  # ADA after DiffAugment
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert 0.0 <= r["ada_p"] <= 1.0 and -1.0 <= r["ada_rt"] <= 1.0
        assert "lecam_real" in r and "lecam_fake" in r
    ps = [r["ada_p"] for r in rows]
    # each step moves p by exactly +-0.1 (or it stays at 0, the floor)
    assert all(abs(b - a) == pytest.approx(0.1) or a == b == 0.0 for a, b in zip([0.0, *ps], ps))
    state = tensors(run / "checkpoints" / "step-00000004" / "state.safetensors")
    assert state["parts.0.aug.ada.p"].item() == rows[-1]["ada_p"]
    assert state["parts.0.comp.loss.lecam_ema_real"].item() == pytest.approx(rows[-1]["lecam_real"], abs=1e-6)


@CATS
def test_resume_is_bit_exact_with_ada_and_lecam(tmp_path):
    from test_resume import assert_resume_is_exact

    args = [*TINY, *FAST_ADA, "--set", "augment.ada.initial_p=0.3", "--set", "loss.lecam=0.1",
            "--set", "log.gif=false", "--set", "log.plots=false"]
    assert_resume_is_exact("dcgan-cats", args, tmp_path,
                           state_keys=("parts.0.aug.ada.p", "parts.0.comp.loss.lecam_ema_real"))
    rows = metrics(tmp_path / "split")
    assert len({r["ada_p"] for r in rows}) > 1  # p did adapt across the resume point
