"""Adversarial losses checked against hand-computed values."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

import ganforge_losses
from ganforge.core.components import AdversarialLoss
from ganforge_losses.losses import (
    HingeLoss,
    LSGANConfig,
    LSGANLoss,
    VanillaConfig,
    VanillaGANLoss,
    WGANGPConfig,
    WGANGPLoss,
)

torch.set_num_threads(1)


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_registrations():
    found = {}

    def register(name, builder, config=None, *, summary=None, aliases=()):
        found[name] = (builder, config, summary)

    ganforge_losses.register_losses(register)
    assert set(found) == {"lsgan", "vanilla", "hinge", "wgan-gp"}
    assert found["hinge"][0](None) is not None  # build_hinge(None) still works
    for builder, config, summary in found.values():
        assert summary
        loss = builder(config() if config else None)
        assert isinstance(loss, AdversarialLoss) and isinstance(loss, nn.Module)
    assert {f.name: f.default for f in dataclasses.fields(LSGANConfig)} == dict(real_label=1.0, fake_label=0.0, lecam=0.0, lecam_decay=0.99)
    assert {f.name: f.default for f in dataclasses.fields(VanillaConfig)} == dict(label_smoothing=0.0, lecam=0.0, lecam_decay=0.99)
    assert {f.name: f.default for f in dataclasses.fields(WGANGPConfig)} == dict(gp_weight=10.0, drift=0.0, lecam=0.0, lecam_decay=0.99)


# --------------------------------------------------------------------------- LSGAN


def test_lsgan_values():
    loss = LSGANLoss()
    assert loss.d_loss(torch.ones(4), torch.zeros(4)).item() == 0.0
    assert loss.d_loss(torch.zeros(4), torch.ones(4)).item() == pytest.approx(1.0)
    assert loss.d_loss(t(0.5, 1.5), t(0.0, 0.0)).item() == pytest.approx(0.5 * 0.25)
    assert loss.g_loss(torch.ones(3)).item() == 0.0
    assert loss.g_loss(torch.zeros(3)).item() == pytest.approx(0.5)
    assert loss.g_loss(t(3.0, -1.0)).item() == pytest.approx(0.5 * (4 + 4) / 2)


def test_lsgan_custom_labels_and_patch_outputs():
    loss = LSGANLoss(LSGANConfig(real_label=0.9, fake_label=-1.0))
    real, fake = torch.full((2, 1, 4, 4), 0.9), torch.full((2, 1, 4, 4), -1.0)
    assert loss.d_loss(real, fake).item() == pytest.approx(0.0, abs=1e-7)
    assert loss.g_loss(fake).item() == pytest.approx(0.5 * 1.9**2)


def test_losses_compute_in_float32_under_bf16():
    real = torch.randn(8, 1, 4, 4).bfloat16()
    fake = torch.randn(8, 1, 4, 4).bfloat16()
    for loss in (LSGANLoss(), VanillaGANLoss(), HingeLoss(), WGANGPLoss()):
        d, g = loss.d_loss(real, fake), loss.g_loss(fake)
        assert d.dtype == g.dtype == torch.float32
        assert d.item() == pytest.approx(loss.d_loss(real.float(), fake.float()).item(), rel=1e-6)


# --------------------------------------------------------------------------- vanilla


def test_vanilla_values():
    loss = VanillaGANLoss()
    assert loss.d_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(2 * math.log(2))
    assert loss.g_loss(torch.zeros(3)).item() == pytest.approx(math.log(2))
    expected = math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))
    assert loss.d_loss(t(2.0), t(-1.0)).item() == pytest.approx(expected, rel=1e-6)
    # Non-saturating: G's loss is -log(sigmoid(D(G(z)))).
    assert loss.g_loss(t(-1.0)).item() == pytest.approx(math.log(1 + math.exp(1.0)), rel=1e-6)
    # Stable for large logits (no inf/nan).
    assert torch.isfinite(loss.d_loss(t(100.0), t(-100.0))) and loss.d_loss(t(100.0), t(-100.0)).item() < 1e-6


def test_vanilla_label_smoothing():
    loss = VanillaGANLoss(VanillaConfig(label_smoothing=0.1))
    x = 1.5
    sig = 1 / (1 + math.exp(-x))
    real_term = -(0.9 * math.log(sig) + 0.1 * math.log(1 - sig))
    fake_term = math.log(2)  # fake logit 0, target 0
    assert loss.d_loss(t(x), t(0.0)).item() == pytest.approx(real_term + fake_term, rel=1e-6)
    # Smoothing only affects D's real target; G still targets 1.
    assert loss.g_loss(t(0.0)).item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError):
        VanillaGANLoss(VanillaConfig(label_smoothing=1.0))


# --------------------------------------------------------------------------- hinge


def test_hinge_values():
    loss = HingeLoss()
    # real: relu(1-2)=0, relu(1-0.5)=0.5 -> 0.25; fake: relu(1-2)=0, relu(1+0.5)=1.5 -> 0.75
    assert loss.d_loss(t(2.0, 0.5), t(-2.0, 0.5)).item() == pytest.approx(1.0)
    assert loss.d_loss(torch.full((4,), 5.0), torch.full((4,), -5.0)).item() == 0.0
    assert loss.g_loss(t(1.0, 3.0)).item() == pytest.approx(-2.0)
    assert loss.penalty(lambda x: x, torch.zeros(1), torch.zeros(1)) is None


# --------------------------------------------------------------------------- WGAN-GP


class LinearCritic(nn.Module):
    """f(x) = <w, x> + b; its input gradient is w everywhere, so the GP is (||w|| - 1)^2 exactly."""

    def __init__(self, scale: float):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 1)
        with torch.no_grad():
            w = torch.randn(1, 3 * 4 * 4)
            self.fc.weight.copy_(scale * w / w.norm())

    def forward(self, x):
        return self.fc(x.flatten(1)).flatten()


def test_wgan_values_and_drift():
    loss = WGANGPLoss()
    assert loss.d_loss(t(1.0, 3.0), t(-1.0, 0.0)).item() == pytest.approx(-0.5 - 2.0)
    assert loss.g_loss(t(1.0, 3.0)).item() == pytest.approx(-2.0)
    drifted = WGANGPLoss(WGANGPConfig(drift=0.001))
    assert drifted.d_loss(t(1.0, 3.0), t(-1.0, 0.0)).item() == pytest.approx(-2.5 + 0.001 * 5.0)


def test_gradient_penalty_zero_for_unit_lipschitz_linear_critic():
    torch.manual_seed(0)
    loss = WGANGPLoss()
    real, fake = torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)
    gp = loss.penalty(LinearCritic(1.0), real, fake)
    assert gp.dim() == 0 and gp.item() == pytest.approx(0.0, abs=1e-8)


def test_gradient_penalty_value_and_critic_gradients():
    torch.manual_seed(0)
    loss = WGANGPLoss(WGANGPConfig(gp_weight=10.0))
    critic = LinearCritic(3.0)
    real, fake = torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4, requires_grad=True)
    gp = loss.penalty(critic, real, fake)
    assert gp.item() == pytest.approx(10.0 * (3.0 - 1.0) ** 2, rel=1e-5)
    gp.backward()
    assert critic.fc.weight.grad is not None and critic.fc.weight.grad.abs().sum() > 0
    assert fake.grad is None  # the fakes are detached: the penalty only trains the critic


def test_gradient_penalty_nonlinear_patch_critic():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, padding=1))
    real, fake = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    loss = WGANGPLoss()
    gp = loss.penalty(critic, real, fake)  # critic outputs a [B, 1, 8, 8] grid
    assert gp.item() > 0
    gp.backward()
    assert critic[0].weight.grad.abs().sum() > 0 and critic[2].weight.grad.abs().sum() > 0

    # The interpolation draws from the global RNG: seeded -> reproducible.
    torch.manual_seed(123)
    a = loss.penalty(critic, real, fake)
    torch.manual_seed(123)
    b = loss.penalty(critic, real, fake)
    torch.manual_seed(124)
    c = loss.penalty(critic, real, fake)
    assert a.item() == b.item() and a.item() != c.item()


def test_gradient_penalty_works_inside_no_grad_and_can_be_disabled():
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        gp = WGANGPLoss().penalty(LinearCritic(2.0), real, fake)
    assert gp.item() == pytest.approx(10.0, rel=1e-5)
    assert WGANGPLoss(WGANGPConfig(gp_weight=0.0)).penalty(LinearCritic(2.0), real, fake) is None


def test_other_losses_have_no_penalty():
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    for loss in (LSGANLoss(), VanillaGANLoss(), HingeLoss()):
        assert loss.penalty(LinearCritic(2.0), real, fake) is None
