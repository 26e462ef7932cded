"""Every component registered through the `ganforge` entry points honours its contract.

Parametrized over whatever is installed (the built-ins, plus e.g. examples/ganforge-extras), so a
new component gets these smoke tests for free: it builds from its default config and runs forward
on CPU; losses give finite scalars with gradients; augmentations keep shape and pass gradients.
"""

from __future__ import annotations

import pytest

from ganforge.core.hookspecs import KINDS
from ganforge.core.plugins import PluginSet
from ganforge.testing import check_component


def _installed() -> PluginSet:
    plugins = PluginSet(strict=False)
    plugins.load_entry_points()
    return plugins


_PLUGINS = _installed()
_COMPONENTS = [(kind, name) for kind in KINDS for name in _PLUGINS.registry.list(kind)]


def test_entry_points_load_without_failures():
    assert not _PLUGINS.failures(), [(i.name, i.error) for i in _PLUGINS.failures()]
    assert len(_COMPONENTS) >= 20


@pytest.mark.parametrize(("kind", "name"), _COMPONENTS, ids=[f"{k}:{n}" for k, n in _COMPONENTS])
def test_component_contract(kind, name):
    result = check_component(_PLUGINS.registry, kind, name)
    assert result == "ok" or result.startswith("skipped: needs data"), result
