"""Shared fixtures. Every test builds its own isolated plugin set, so the tests see exactly the
plugins they name, whatever else is installed in the environment."""

from __future__ import annotations

import pytest
import torch

import ganforge_extras
from ganforge.testing import isolated_plugins


@pytest.fixture
def extras():
    """A plugin set holding only this plugin."""
    return isolated_plugins(ganforge_extras, strict=True)


@pytest.fixture
def registry(extras):
    return extras.registry


@pytest.fixture
def with_builtins():
    """This plugin next to the built-in plugins its recipe builds on (dcgan-shapes, shapes, gan, adam)."""
    import ganforge_augment
    import ganforge_datasets
    import ganforge_dcgan
    import ganforge_gan
    import ganforge_losses
    import ganforge_optim

    return isolated_plugins(
        ganforge_gan, ganforge_dcgan, ganforge_datasets, ganforge_losses, ganforge_augment, ganforge_optim, ganforge_extras,
        strict=True,
    )


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
