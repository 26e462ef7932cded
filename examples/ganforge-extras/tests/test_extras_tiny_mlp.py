"""The "tiny-mlp" generator: a noise-to-image MLP."""

from __future__ import annotations

import pytest
import torch

from ganforge.core.errors import RecipeError
from ganforge_extras import TinyMLPConfig, TinyMLPGenerator


def test_default_config_and_noise_size(registry):
    gen = registry.build("generator", "tiny-mlp")
    assert isinstance(gen, TinyMLPGenerator)
    assert gen.noise_size == 64 and gen.image_size == 32
    assert gen.config == TinyMLPConfig(image_size=32, noise_size=64, hidden=256)


@pytest.mark.parametrize("image_size,noise_size,hidden", [(32, 64, 256), (16, 8, 32), (28, 100, 64)])
def test_output_shape_and_range(registry, image_size, noise_size, hidden):
    gen = registry.build("generator", "tiny-mlp", {"image_size": image_size, "noise_size": noise_size, "hidden": hidden})
    for mode in (gen.train, gen.eval):
        mode()
        out = gen(torch.randn(4, noise_size) * 5)  # large noise: tanh keeps it in range
        assert out.shape == (4, 3, image_size, image_size)
        assert out.dtype == torch.float32
        assert out.min() >= -1 and out.max() <= 1


def test_accepts_convolutional_style_noise():
    gen = TinyMLPGenerator(TinyMLPConfig(image_size=8, noise_size=16, hidden=32)).eval()
    z = torch.randn(3, 16)
    torch.testing.assert_close(gen(z.view(3, 16, 1, 1)), gen(z))


def test_wrong_noise_size_is_reported():
    gen = TinyMLPGenerator(TinyMLPConfig(noise_size=16, hidden=32))
    with pytest.raises(ValueError, match="noise of size 16"):
        gen(torch.randn(2, 15))


def test_different_noise_gives_different_images():
    gen = TinyMLPGenerator(TinyMLPConfig(image_size=8, noise_size=16, hidden=32)).eval()
    out = gen(torch.randn(2, 16))
    assert not torch.allclose(out[0], out[1])


def test_gradients_reach_every_parameter():
    gen = TinyMLPGenerator(TinyMLPConfig(image_size=8, noise_size=16, hidden=32))
    gen(torch.randn(4, 16)).square().mean().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_architecture_and_size():
    gen = TinyMLPGenerator(TinyMLPConfig())
    linears = [m for m in gen.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 256), (256, 512), (512, 1024), (1024, 3072)]
    weights = 64 * 256 + 256 * 512 + 512 * 1024 + 1024 * 3072
    batchnorm = 2 * (256 + 512 + 1024)  # weight and bias
    assert sum(p.numel() for p in gen.parameters()) == weights + batchnorm + 3072  # + the output bias


def test_fits_a_target_image():
    """It can actually learn: a few Adam steps make every noise vector map close to one image."""
    torch.manual_seed(0)
    gen = TinyMLPGenerator(TinyMLPConfig(image_size=8, noise_size=8, hidden=64))
    target = torch.rand(1, 3, 8, 8) * 1.6 - 0.8
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    for _ in range(150):
        loss = (gen(torch.randn(16, 8)) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01


def test_options_are_validated(registry):
    with pytest.raises(RecipeError, match="hidden"):
        registry.build("generator", "tiny-mlp", {"hidden": 0})
    with pytest.raises(RecipeError, match="width"):
        registry.build("generator", "tiny-mlp", {"width": 32})
    with pytest.raises(ValueError, match="image_size"):
        TinyMLPConfig(image_size=-1)
