"""Shared test setup: the bundled data root, one torch thread, and no plugin set leaking between tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (REPO.parent / "shared" / "data").resolve()

# Set before any test imports ganforge.data.folders; an explicit GANFORGE_DATA is kept.
os.environ.setdefault("GANFORGE_DATA", str(DEFAULT_DATA))
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _reset_plugins():
    """Tests may install a plugin set process-wide (``set_plugins`` / ``use_plugins``); drop it after each."""
    from ganforge.core.plugins import set_plugins

    yield
    set_plugins(None)


@pytest.fixture
def data_root() -> Path:
    """The data root (``$GANFORGE_DATA``); skips the test when that folder is absent."""
    root = Path(os.environ.get("GANFORGE_DATA") or DEFAULT_DATA).expanduser()
    if not root.is_dir():
        pytest.skip(f"data folder {root} is absent (set GANFORGE_DATA to the shared data)")
    return root
