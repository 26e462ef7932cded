"""The "noise" augmentation: Gaussian instance noise on every discriminator input."""

from __future__ import annotations

import pytest
import torch

from ganforge.core.errors import RecipeError
from ganforge_extras import InstanceNoise, NoiseConfig


def test_runs_inside_the_training_step():
    assert InstanceNoise.stage == "step"


@pytest.mark.parametrize("sigma", [0.05, 0.1, 0.5])
def test_noise_has_zero_mean_and_std_sigma(sigma):
    x = torch.rand(32, 3, 32, 32) * 2 - 1  # ~98k elements: the sample std is within ~1% of sigma
    noise = InstanceNoise(NoiseConfig(sigma=sigma))(x) - x
    assert noise.std().item() == pytest.approx(sigma, rel=0.02)
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01 * sigma + 1e-3)
    # Independent of the image: no correlation between the noise and the pixel values.
    corr = torch.corrcoef(torch.stack([noise.flatten(), x.flatten()]))[0, 1]
    assert abs(corr.item()) < 0.02


def test_default_sigma_is_0_1(registry):
    aug = registry.build("augmentation", "noise")
    assert isinstance(aug, InstanceNoise) and aug.sigma == pytest.approx(0.1)


def test_keeps_shape_dtype_and_device():
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.zeros(4, 3, 16, 16, dtype=dtype)
        y = InstanceNoise()(x)
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        assert not torch.equal(y, x)


def test_gradient_passes_through_unchanged():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    weights = torch.randn(4, 3, 8, 8)
    (InstanceNoise(NoiseConfig(sigma=0.3))(x) * weights).sum().backward()
    assert torch.equal(x.grad, weights)  # d(x + noise)/dx = 1


def test_randomness_comes_from_the_global_generator():
    aug, x = InstanceNoise(), torch.zeros(2, 3, 8, 8)
    torch.manual_seed(123)
    first, second = aug(x), aug(x)
    torch.manual_seed(123)
    assert torch.equal(aug(x), first) and torch.equal(aug(x), second)
    assert not torch.equal(first, second)  # fresh noise on every call


def test_zero_sigma_is_the_identity():
    x = torch.randn(2, 3, 8, 8)
    assert InstanceNoise(NoiseConfig(sigma=0.0))(x) is x


def test_options_are_validated(registry):
    aug = registry.build("augmentation", "noise", {"sigma": 1})  # a TOML integer is a fine float
    assert aug.sigma == 1.0
    with pytest.raises(RecipeError, match="sigma"):
        registry.build("augmentation", "noise", {"sigma": -0.1})
    with pytest.raises(RecipeError, match="anneal"):
        registry.build("augmentation", "noise", {"anneal_steps": 10})  # stateless: sigma only
    with pytest.raises(ValueError):
        NoiseConfig(sigma=float("nan"))
