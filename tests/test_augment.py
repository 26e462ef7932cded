"""DiffAugment and the deluxe real-image augmentation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import ganforge_augment
from ganforge.core.components import Augmentation
from ganforge_augment.deluxe import DeluxeAugment, DeluxeConfig
from ganforge_augment.diffaug import DiffAugment, DiffAugmentConfig, cutout, translation

torch.set_num_threads(1)


def images(b=4, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g) * 2 - 1


def shifted(x, dy, dx):
    """Reference: out[i, j] = x[i - dy, j - dx], zeros where that falls outside."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_registrations():
    found = {}

    def register(name, builder, config=None, *, summary=None, aliases=()):
        found[name] = (builder, config, summary)

    ganforge_augment.register_augmentations(register)
    assert set(found) == {"diffaug", "deluxe", "ada"}
    stages = {}
    for name, (builder, config, summary) in found.items():
        assert summary and dataclasses.is_dataclass(config)
        aug = builder(config())
        assert isinstance(aug, Augmentation)
        stages[name] = aug.stage
    assert stages == {"diffaug": "step", "deluxe": "real", "ada": "step"}
    assert {f.name: f.default for f in dataclasses.fields(DiffAugmentConfig)} == dict(
        policy="translation,cutout", translation_ratio=0.125, cutout_ratio=0.5, probability=1.0
    )
    assert {f.name: f.default for f in dataclasses.fields(DeluxeConfig)} == dict(scale=1.1, flip=True, jitter=0.0)


# --------------------------------------------------------------------------- DiffAugment


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaug_shape_gradient_and_change(policy):
    aug = DiffAugment(DiffAugmentConfig(policy=policy))
    x = images().requires_grad_(True)
    torch.manual_seed(0)
    out = aug(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", ["color", "translation,cutout", "color,translation,cutout"])
def test_diffaug_seeded_determinism(policy):
    aug = DiffAugment(DiffAugmentConfig(policy=policy))
    x = images()
    torch.manual_seed(7)
    a = aug(x)
    torch.manual_seed(7)
    b = aug(x)
    torch.manual_seed(8)
    c = aug(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_translation_moves_content_within_range():
    torch.manual_seed(0)
    x = images(b=16)
    out = translation(x, 0.125)  # 16 px -> shifts in [-2, 2]
    found = []
    for i in range(x.shape[0]):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out[i], shifted(x[i], dy, dx))
        ]
        assert len(matches) == 1, f"sample {i} is not a translation of its input"
        found.append(matches[0])
    assert any(s != (0, 0) for s in found)
    assert len(set(found)) > 3  # per-sample shifts


def test_translation_gradient_is_the_inverse_shift():
    torch.manual_seed(3)
    x = images(b=2).requires_grad_(True)
    out = translation(x, 0.25)
    out.sum().backward()
    # Each input pixel that stays inside the frame receives gradient exactly 1, the rest 0.
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(x.grad.sum(), (out != 0).sum().float())


@pytest.mark.parametrize("ratio,side", [(0.5, 8), (0.25, 4)])
def test_cutout_zeroes_a_square_of_expected_area(ratio, side):
    torch.manual_seed(0)
    x = torch.rand(6, 3, 16, 16) + 0.5  # strictly positive, so every zero comes from cutout
    out = cutout(x, ratio)
    for i in range(x.shape[0]):
        zero = out[i] == 0
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])
        rows = zero[0].any(1).nonzero().flatten()
        cols = zero[0].any(0).nonzero().flatten()
        assert zero[0].sum().item() == side * side
        assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (side, side)
        assert torch.equal(out[i][~zero], x[i][~zero])


def test_cutout_location_varies_per_image():
    torch.manual_seed(0)
    out = cutout(torch.ones(8, 3, 16, 16), 0.5)
    masks = {tuple((out[i, 0] == 0).flatten().tolist()) for i in range(8)}
    assert len(masks) > 1


def test_color_changes_per_sample():
    torch.manual_seed(0)
    x = images(b=1).expand(4, -1, -1, -1)
    out = DiffAugment(DiffAugmentConfig(policy="color"))(x)
    assert not torch.allclose(out[0], out[1])


def test_diffaug_bf16_keeps_dtype_and_gradient():
    aug = DiffAugment(DiffAugmentConfig(policy="color,translation,cutout"))
    x = images().bfloat16().requires_grad_(True)
    out = aug(x)
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    out.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and x.grad.abs().sum() > 0


def test_diffaug_invalid_policy():
    with pytest.raises(ValueError, match=r"unknown DiffAugment policy 'flip'.*valid policies: color, translation, cutout"):
        DiffAugment(DiffAugmentConfig(policy="translation,flip"))
    with pytest.raises(ValueError, match="probability"):
        DiffAugment(DiffAugmentConfig(probability=1.5))
    assert DiffAugment(DiffAugmentConfig(policy=" color , cutout ")).policies == ("color", "cutout")


def test_diffaug_probability():
    x = images(b=32)
    assert DiffAugment(DiffAugmentConfig(probability=0.0))(x) is x
    torch.manual_seed(0)
    out = DiffAugment(DiffAugmentConfig(policy="color", probability=0.5))(x)
    unchanged = [torch.equal(out[i], x[i]) for i in range(32)]
    assert 0 < sum(unchanged) < 32


# --------------------------------------------------------------------------- deluxe


def test_deluxe_shape_range_dtype():
    x = images(b=4, h=32, w=24)
    x[:, :, 0, 0] = 1.0
    x[:, :, -1, -1] = -1.0
    for cfg in (DeluxeConfig(), DeluxeConfig(jitter=0.5), DeluxeConfig(scale=1.3, jitter=1.0)):
        out = DeluxeAugment(cfg)(x)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert out.min() >= -1.0 and out.max() <= 1.0
    assert DeluxeAugment()(x.bfloat16()).dtype == torch.bfloat16
    assert DeluxeAugment()(x[0]).shape == x[0].shape  # a single image works too


def test_deluxe_flips_sometimes():
    torch.manual_seed(0)
    x = images(b=32)
    out = DeluxeAugment(DeluxeConfig(scale=1.0))(x)  # flip only
    flipped = [torch.equal(out[i], x[i].flip(2)) for i in range(32)]
    kept = [torch.equal(out[i], x[i]) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < 32
    assert torch.equal(DeluxeAugment(DeluxeConfig(scale=1.0, flip=False))(x), x)


def test_deluxe_crop_is_a_window_of_the_zoomed_image_and_differs_per_image():
    torch.manual_seed(0)
    x = images(b=1, h=20, w=20).expand(8, -1, -1, -1)
    out = DeluxeAugment(DeluxeConfig(scale=1.2, flip=False))(x)
    big = F.interpolate(x[:1], size=(24, 24), mode="bilinear", align_corners=False)[0]
    offsets = set()
    for i in range(8):
        hits = [(t, l) for t in range(5) for l in range(5) if torch.allclose(out[i], big[:, t : t + 20, l : l + 20])]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 1


def test_deluxe_jitter_changes_colours_per_image():
    torch.manual_seed(0)
    x = images(b=1).expand(4, -1, -1, -1) * 0.5
    out = DeluxeAugment(DeluxeConfig(scale=1.0, flip=False, jitter=0.4))(x)
    assert not torch.allclose(out, x)
    assert not torch.allclose(out[0], out[1])


def test_deluxe_needs_no_gradient_and_validates():
    x = images().requires_grad_(True)
    assert not DeluxeAugment()(x).requires_grad
    with pytest.raises(ValueError, match="scale"):
        DeluxeAugment(DeluxeConfig(scale=0.9))
    with pytest.raises(ValueError, match="jitter"):
        DeluxeAugment(DeluxeConfig(jitter=2.0))
