"""The "relativistic" loss: RaLSGAN and RaSGAN on known inputs, against a reference formulation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganforge.core.components import AdversarialLoss
from ganforge.core.errors import RecipeError
from ganforge_extras import RelativisticAverageLoss, RelativisticConfig


def reference(variant, real, fake):
    """(D loss, G loss) written out as in the paper's reference code, with both outputs at hand."""
    if variant == "lsgan":
        d = ((real - fake.mean() - 1) ** 2).mean() + ((fake - real.mean() + 1) ** 2).mean()
        g = ((real - fake.mean() + 1) ** 2).mean() + ((fake - real.mean() - 1) ** 2).mean()
    else:
        bce = F.binary_cross_entropy_with_logits
        ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
        d = bce(real - fake.mean(), ones) + bce(fake - real.mean(), zeros)
        g = bce(real - fake.mean(), torch.zeros_like(real)) + bce(fake - real.mean(), torch.ones_like(fake))
    return d / 2, g / 2


def make(variant="lsgan"):
    return RelativisticAverageLoss(RelativisticConfig(variant=variant))


def test_is_an_adversarial_loss_with_lsgan_default(registry):
    loss = registry.build("loss", "relativistic")
    assert isinstance(loss, AdversarialLoss) and isinstance(loss, torch.nn.Module)
    assert loss.config.variant == "lsgan"
    assert loss.penalty(lambda x: x, torch.zeros(1), torch.zeros(1)) is None


def test_ralsgan_known_values():
    loss = make("lsgan")
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])  # mean(real) = 2, mean(fake) = -1
    # D: real - mean(fake) = [2, 4] -> (x-1)^2 = [1, 9]; fake - mean(real) = [-2, -4] -> (x+1)^2 = [1, 9]
    assert loss.d_loss(real, fake).item() == pytest.approx(0.5 * 5 + 0.5 * 5)
    # G: fake - mean(real) = [-2, -4] -> (x-1)^2 = [9, 25]; real - mean(fake) = [2, 4] -> (x+1)^2 = [9, 25]
    assert loss.g_loss(fake, real).item() == pytest.approx(0.5 * 17 + 0.5 * 17)


def test_ralsgan_optimum_of_the_discriminator_is_zero():
    loss = make("lsgan")
    real, fake = torch.full((4, 1), 0.5), torch.full((4, 1), -0.5)  # real - mean(fake) = 1, fake - mean(real) = -1
    assert loss.d_loss(real, fake).item() == pytest.approx(0.0)
    # ...where the generator is worst off: 0.5*(-1-1)^2 + 0.5*(1+1)^2
    assert loss.g_loss(fake, real).item() == pytest.approx(4.0)


def test_rasgan_known_values():
    loss = make("sgan")
    zero = torch.zeros(3)
    assert loss.d_loss(zero, zero).item() == pytest.approx(math.log(2))
    assert loss.g_loss(zero, zero).item() == pytest.approx(math.log(2))
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])  # relativistic scores: +3 for real, -3 for fake
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731 - BCE(x, 1) = softplus(-x)
    assert loss.d_loss(real, fake).item() == pytest.approx(0.5 * softplus(-3) + 0.5 * softplus(-3))
    assert loss.g_loss(fake, real).item() == pytest.approx(0.5 * softplus(3) + 0.5 * softplus(3))


@pytest.mark.parametrize("variant", ["lsgan", "sgan"])
@pytest.mark.parametrize("shape", [(8,), (8, 1), (8, 1, 5, 5)])  # one score per image, or patch scores
def test_matches_the_reference_values_and_gradients(variant, shape):
    real = torch.randn(shape) + 0.5
    fake = (torch.randn(shape) - 0.5).requires_grad_(True)
    ref_d, ref_g = reference(variant, real, fake)
    (ref_grad,) = torch.autograd.grad(ref_g, fake)

    loss = make(variant)
    assert loss.d_loss(real, fake).item() == pytest.approx(ref_d.item(), rel=1e-5)
    g = loss.g_loss(fake, real)
    assert g.item() == pytest.approx(ref_g.item(), rel=1e-5)
    (grad,) = torch.autograd.grad(g, fake)
    torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("variant", ["lsgan", "sgan"])
def test_discriminator_loss_trains_both_outputs(variant):
    real = torch.randn(6, requires_grad=True)
    fake = torch.randn(6, requires_grad=True)
    make(variant).d_loss(real, fake).backward()
    assert real.grad is not None and fake.grad is not None
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0


def test_generator_loss_uses_the_real_outputs_it_is_given_detached():
    loss = make()
    assert loss.uses_real_in_g  # algorithms pass the current D's real outputs to g_loss
    real = torch.randn(5, requires_grad=True)
    fake = torch.randn(5, requires_grad=True)
    loss.g_loss(fake, real * 2).backward()
    assert real.grad is None  # the generator step never reaches back into the real outputs
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_generator_loss_without_real_outputs_is_a_clear_error():
    with pytest.raises(ValueError, match="real_out"):
        make().g_loss(torch.zeros(4))


def test_is_stateless():
    loss = make()
    loss.d_loss(torch.randn(4), torch.randn(4))
    assert loss.state_dict() == {}
    # The same call gives the same value whatever came before (nothing is cached between calls).
    fake, real = torch.randn(4), torch.randn(4)
    first = loss.g_loss(fake, real)
    loss.d_loss(torch.randn(4), torch.randn(4))
    assert loss.g_loss(fake, real).item() == first.item()


def test_computes_in_float32():
    loss = make()
    real, fake = torch.randn(4, dtype=torch.bfloat16), torch.randn(4, dtype=torch.bfloat16)
    assert loss.d_loss(real, fake).dtype == torch.float32
    assert loss.g_loss(fake, real).dtype == torch.float32


def test_options_are_validated(registry):
    assert registry.build("loss", "relativistic", {"variant": "sgan"}).config.variant == "sgan"
    with pytest.raises(RecipeError, match="variant"):
        registry.build("loss", "relativistic", {"variant": "hinge"})
    with pytest.raises(ValueError, match="variant"):
        RelativisticAverageLoss(RelativisticConfig(variant="wgan"))
