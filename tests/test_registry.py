"""The registry: lookups with suggestions, wildcard listing in natural order, aliases, config checks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ganforge import hookimpl
from ganforge.core.errors import PluginError, UnknownComponentError
from ganforge.core.registry import Component, Registry
from ganforge.testing import isolated_plugins


@dataclass(frozen=True)
class WidthConfig:
    width: int = 8


def builder(config=None):
    return ("built", config)


def component(name: str, kind: str = "generator", *, plugin: str = "p", config=WidthConfig, aliases=()) -> Component:
    return Component(kind=kind, name=name, builder=builder, config=config, summary="", plugin=plugin, aliases=tuple(aliases))


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    for name in ("g2", "g10", "g1", "dcgan", "resnet"):
        reg.add(component(name))
    return reg


def test_unknown_name_suggests_the_closest(registry):
    with pytest.raises(UnknownComponentError) as info:
        registry.get("generator", "dcgn")
    message = str(info.value)
    assert "unknown generator 'dcgn'" in message
    assert "did you mean 'dcgan'" in message
    assert "registered: dcgan, g1, g2, g10, resnet" in message


def test_unknown_name_without_close_match_lists_what_exists(registry):
    with pytest.raises(UnknownComponentError, match="registered: dcgan") as info:
        registry.get("generator", "zzzzzz")
    assert "did you mean" not in str(info.value)


def test_unknown_kind(registry):
    with pytest.raises(UnknownComponentError, match="did you mean 'generator'"):
        registry.get("generators", "dcgan")
    with pytest.raises(UnknownComponentError):
        registry.list("generators")
    assert not registry.has("generators", "dcgan")


def test_list_is_naturally_sorted_and_takes_wildcards(registry):
    assert registry.list("generator") == ["dcgan", "g1", "g2", "g10", "resnet"]
    assert registry.list("generator", "g*") == ["g1", "g2", "g10"]
    assert registry.list("generator", "g?") == ["g1", "g2"]
    assert registry.list("generator", ["res*", "g1*"]) == ["g1", "g10", "resnet"]
    assert registry.list("generator", "nothing*") == []
    assert registry.list("loss") == []


def test_aliases_resolve_to_the_component(registry):
    registry.add(component("least-squares", "loss", aliases=("lsgan", "ls")))
    assert registry.get("loss", "lsgan").name == "least-squares"
    assert registry.get("loss", "ls") is registry.get("loss", "least-squares")
    assert registry.has("loss", "ls")
    assert registry.list("loss") == ["least-squares"]  # aliases are not listed twice
    with pytest.raises(UnknownComponentError, match="did you mean 'lsgan'"):
        registry.get("loss", "lsgn")


def test_alias_clashing_with_a_name_is_a_duplicate(registry):
    with pytest.raises(PluginError, match="generator 'g1' is registered twice: by plugin 'p' and by plugin 'q'"):
        registry.add(component("other", aliases=("g1",), plugin="q"))
    assert not registry.has("generator", "other")


def test_duplicate_names_name_both_plugins(registry):
    with pytest.raises(PluginError, match="by plugin 'p' and by plugin 'intruder'"):
        registry.add(component("dcgan", plugin="intruder"))
    with pytest.raises(PluginError, match="plugin 'p' registers generator 'dcgan' twice"):
        registry.add(component("dcgan"))
    # The same name under another kind is fine.
    registry.add(component("dcgan", "discriminator"))


def test_config_must_be_a_dataclass():
    reg = Registry()
    with pytest.raises(PluginError, match="generator 'x' with a config that is not a dataclass"):
        reg.add(component("x", config=dict))
    with pytest.raises(PluginError, match="not a dataclass"):
        reg.add(component("y", config=WidthConfig()))  # an instance, not the type


def test_config_not_a_dataclass_fails_the_plugin():
    class Plugin:
        @hookimpl
        def register_generators(self, register):
            register("ok", builder, WidthConfig)
            register("bad", builder, {"width": 8})

    plugins = isolated_plugins(("plain", Plugin()))
    assert not plugins.registry.has("generator", "ok")
    assert "not a dataclass" in plugins.failures()[0].error
    with pytest.raises(PluginError, match="plugin 'plain'.*not a dataclass"):
        isolated_plugins(("plain", Plugin()), strict=True).registry


def test_invalid_names_are_rejected():
    reg = Registry()
    with pytest.raises(PluginError, match="invalid name"):
        reg.add(component(""))
    with pytest.raises(PluginError, match="unknown component kind"):
        reg.add(component("x", "generatr"))


def test_build_validates_options(registry):
    assert registry.build("generator", "g1", {"width": 4}) == ("built", WidthConfig(width=4))
    assert registry.build("generator", "g1") == ("built", WidthConfig())
    with pytest.raises(Exception, match="unknown option 'generator.widht'.*did you mean 'width'"):
        registry.build("generator", "g1", {"widht": 4}, where="generator")


def test_remove_plugin_drops_components_and_aliases():
    reg = Registry()
    reg.add(component("a", aliases=("alias-a",), plugin="one"))
    reg.add(component("b", plugin="two"))
    assert [c.name for c in reg.remove_plugin("one")] == ["a"]
    assert not reg.has("generator", "alias-a")
    assert reg.list("generator") == ["b"]
    reg.add(component("alias-a", plugin="two"))  # the name is free again
