"""ganforge's plugin contract, checked with ganforge.testing, plus discovery through the entry point."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest

from ganforge.testing import check_component, check_plugin

EXPECTED = {
    "generator": ["tiny-mlp"],
    "loss": ["relativistic"],
    "augmentation": ["noise"],
    "recipe": ["shapes-mlp"],
}


def test_plugin_passes_the_contract_checks(extras):
    results = check_plugin(extras)
    assert results == {
        "generator:tiny-mlp": "ok",
        "loss:relativistic": "ok",
        "augmentation:noise": "ok",
        # It extends a built-in recipe: check_plugin resolves it with the installed built-ins.
        "recipe:shapes-mlp": "ok",
    }


def test_recipe_passes_the_contract_checks_next_to_the_builtins(with_builtins):
    assert check_component(with_builtins.registry, "recipe", "shapes-mlp") == "ok"


@pytest.mark.parametrize("kind,name", [(k, n) for k, names in EXPECTED.items() if k != "recipe" for n in names])
def test_each_component_passes_the_contract_checks(registry, kind, name):
    assert check_component(registry, kind, name) == "ok"


def test_registers_exactly_its_components(extras, registry):
    for kind, names in EXPECTED.items():
        assert registry.list(kind) == names
    provided = {c.kind: [] for c in registry.all()}
    for c in registry.all():
        provided[c.kind].append(c.name)
    assert provided == EXPECTED
    for component in registry.all():
        if component.kind == "recipe":
            continue  # a recipe's description lives in its TOML
        assert component.summary, f"{component.kind} '{component.name}' has no summary"


def test_defaults_build(registry):
    for kind in ("generator", "loss", "augmentation"):
        for name in EXPECTED[kind]:
            assert registry.build(kind, name) is not None


def test_found_through_the_ganforge_entry_point():
    try:
        dist = distribution("ganforge-extras")
    except PackageNotFoundError:
        pytest.skip("ganforge-extras is not installed (pip install -e examples/ganforge-extras)")
    eps = [ep for ep in dist.entry_points if ep.group == "ganforge"]
    assert [(ep.name, ep.value) for ep in eps] == [("extras", "ganforge_extras")]

    from ganforge.core.plugins import PluginSet

    plugins = PluginSet(strict=True)
    plugins.load_entry_points(eps)
    info = plugins.infos["extras"]
    assert info.error is None and not info.warnings
    assert info.distribution == "ganforge-extras" and not info.builtin
    registry = plugins.registry
    assert {k: sorted(v) for k, v in info.provides.items()} == EXPECTED
    assert registry.get("loss", "relativistic").distribution == "ganforge-extras"
