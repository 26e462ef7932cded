"""Plugin loading: failures stay contained, are reported with names, and strict mode makes them fatal."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from ganforge import hookimpl
from ganforge.core.components import AdversarialLoss, Algorithm
from ganforge.core.errors import DataError, PluginError
from ganforge.core.plugins import PluginSet, get_plugins, get_registry, set_plugins
from ganforge.testing import FakeEntryPoint, check_component, check_plugin, isolated_plugins, use_plugins


# --- fake plugins --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyGenConfig:
    noise_size: int = 4
    image_size: int = 8


class TinyGen(nn.Module):
    def __init__(self, config: TinyGenConfig):
        super().__init__()
        self.noise_size = config.noise_size
        self.size = config.image_size
        self.fc = nn.Linear(config.noise_size, 3 * config.image_size**2)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(z.shape[0], 3, self.size, self.size)


def build_tiny_gen(config: TinyGenConfig) -> TinyGen:
    """A tiny noise-to-image generator."""
    return TinyGen(config)


class TinyDisc(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))


class GoodPlugin:
    @hookimpl
    def register_generators(self, register):
        register("tiny", build_tiny_gen, TinyGenConfig)

    @hookimpl
    def register_discriminators(self, register):
        register("tiny", TinyDisc, summary="mean pixel")


class OtherPlugin:
    @hookimpl
    def register_discriminators(self, register):
        register("other", TinyDisc)


def module_plugin(name: str, **hooks) -> types.ModuleType:
    """A plugin module with the given hook functions (already decorated or not)."""
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, fn)
    return module


def broken_ep(name: str = "broken") -> FakeEntryPoint:
    return FakeEntryPoint(name, error=ImportError("No module named 'missing_dependency'"), value="broken_pkg")


# --- failures stay contained ---------------------------------------------------------------------
def test_broken_entry_point_is_recorded_and_others_still_register():
    ep = types.SimpleNamespace(name="broken", value="broken_pkg", dist=None,
                               load=lambda: (_ for _ in ()).throw(ImportError("No module named 'missing_dependency'")))
    plugins = isolated_plugins(entry_points=[ep, FakeEntryPoint("good", GoodPlugin())])
    registry = plugins.registry
    assert registry.list("generator") == ["tiny"]
    assert registry.get("discriminator", "tiny").plugin == "good"
    [failure] = plugins.failures()
    assert failure.name == "broken"
    assert "ImportError" in failure.error and "missing_dependency" in failure.error
    assert failure.traceback and "ImportError" in failure.traceback
    assert plugins.infos["good"].provides == {"generator": ["tiny"], "discriminator": ["tiny"]}


def test_strict_env_makes_a_broken_plugin_fatal(monkeypatch):
    monkeypatch.setenv("GANFORGE_STRICT_PLUGINS", "1")
    plugins = PluginSet()
    with pytest.raises(PluginError, match="plugin 'broken'.*missing_dependency"):
        plugins.load_entry_points([broken_ep()])
    with pytest.raises(PluginError, match="'broken'"):
        isolated_plugins(entry_points=[broken_ep()], strict=None)


def test_strict_argument_makes_a_broken_plugin_fatal(monkeypatch):
    monkeypatch.delenv("GANFORGE_STRICT_PLUGINS", raising=False)
    with pytest.raises(PluginError, match="plugin 'broken'"):
        isolated_plugins(entry_points=[broken_ep()], strict=True)
    assert isolated_plugins(entry_points=[broken_ep()]).failures()[0].name == "broken"


def test_get_plugins_warns_about_failures_once(monkeypatch):
    plugins = isolated_plugins(entry_points=[broken_ep()])
    with use_plugins(plugins):
        assert get_plugins() is plugins
    # get_plugins() on a fresh process loads entry points and warns; simulate with a fake group.
    monkeypatch.setattr("ganforge.core.plugins.entry_points", lambda group: [broken_ep(), FakeEntryPoint("good", GoodPlugin())])
    set_plugins(None)
    with pytest.warns(RuntimeWarning, match="plugin 'broken'.*skipped"):
        registry = get_registry()
    assert registry.has("generator", "tiny")


def test_disabled_plugin_is_skipped(monkeypatch):
    monkeypatch.setenv("GANFORGE_DISABLE_PLUGINS", " broken , other")
    plugins = isolated_plugins(
        entry_points=[broken_ep(), FakeEntryPoint("good", GoodPlugin()), FakeEntryPoint("other", OtherPlugin())]
    )
    assert plugins.failures() == []  # never imported, so never failed
    assert plugins.infos["broken"].disabled and plugins.infos["other"].disabled
    assert not plugins.registry.has("discriminator", "other")
    assert plugins.registry.has("discriminator", "tiny")


def test_register_hook_that_raises_is_reported_and_its_partial_components_removed():
    @hookimpl
    def register_generators(register):
        register("half", build_tiny_gen, TinyGenConfig)
        register("tiny", build_tiny_gen, TinyGenConfig)  # would clash with 'good' if it were kept

    @hookimpl
    def register_losses(register):
        register("fine-loss", AdversarialLoss)
        raise RuntimeError("boom while registering")

    flaky = module_plugin("flaky", register_generators=register_generators, register_losses=register_losses)
    plugins = isolated_plugins(("flaky", flaky), ("good", GoodPlugin()))
    registry = plugins.registry
    assert not registry.has("generator", "half")
    assert not registry.has("loss", "fine-loss")
    assert registry.get("generator", "tiny").plugin == "good"  # not blocked by the failed plugin
    [failure] = plugins.failures()
    assert failure.name == "flaky"
    assert "register_losses" in failure.error and "RuntimeError: boom while registering" in failure.error
    assert failure.provides == {}

    with pytest.raises(PluginError, match="plugin 'flaky'.*boom"):
        isolated_plugins(("flaky", flaky), strict=True).registry


def test_typo_hook_name_is_a_warning_with_did_you_mean():
    @hookimpl
    def register_generator(register):
        register("never", build_tiny_gen, TinyGenConfig)

    typo = module_plugin("typo", register_generator=register_generator)
    with pytest.warns(RuntimeWarning, match="register_generator.*did you mean 'register_generators'"):
        plugins = isolated_plugins(("typo", typo))
    [warning] = plugins.infos["typo"].warnings
    assert "'register_generator'" in warning and "did you mean 'register_generators'" in warning
    assert plugins.failures() == []
    assert plugins.registry.list("generator") == []
    with pytest.raises(PluginError, match="plugin 'typo'.*register_generator"):
        isolated_plugins(("typo", typo), strict=True)


def test_specname_hook_is_not_a_typo():
    @hookimpl(specname="register_generators")
    def gens(register):
        register("named", build_tiny_gen, TinyGenConfig)

    plugins = isolated_plugins(("named", module_plugin("named", gens=gens)), strict=True)
    assert plugins.infos["named"].warnings == []
    assert plugins.registry.has("generator", "named")


def test_duplicate_name_across_plugins_names_both():
    class Twin:
        @hookimpl
        def register_discriminators(self, register):
            register("tiny", TinyDisc)

    with pytest.raises(PluginError) as info:
        isolated_plugins(("alpha", GoodPlugin()), ("beta", Twin()), strict=True).registry
    assert "'alpha'" in str(info.value) and "'beta'" in str(info.value) and "discriminator 'tiny'" in str(info.value)

    # Not strict: load order must not decide between two third-party plugins, so neither gets the name.
    for order in ((("alpha", GoodPlugin()), ("beta", Twin())), (("beta", Twin()), ("alpha", GoodPlugin()))):
        plugins = isolated_plugins(*order)
        assert not plugins.registry.has("discriminator", "tiny")
        failures = {f.name: f.error for f in plugins.failures()}
        assert set(failures) == {"alpha", "beta"}
        assert "discriminator 'tiny'" in failures["beta"] and "plugin 'alpha'" in failures["beta"]
        assert "so no plugin keeps the name" in failures["alpha"]


class _Dist:
    """A stand-in for an installed distribution's metadata."""

    def __init__(self, name: str, version: str = "1.0"):
        self.metadata = {"Name": name}
        self.version = version


def test_a_third_party_plugin_can_never_remove_a_builtin():
    import ganforge_dcgan
    import ganforge_optim

    class Stranger:
        @hookimpl
        def register_generators(self, register):
            register("dcgan", TinyGen)  # a name the built-in dcgan plugin already has

        @hookimpl
        def register_losses(self, register):
            register("stranger-loss", lambda: None)

    builtin = FakeEntryPoint("dcgan", ganforge_dcgan, dist=_Dist("ganforge", "0.1.0"))
    optim = FakeEntryPoint("optim", ganforge_optim, dist=_Dist("ganforge", "0.1.0"))
    # "aaa" sorts before "dcgan" and "zzz" after it: the outcome must not depend on that.
    for name in ("aaa", "zzz"):
        stranger = FakeEntryPoint(name, Stranger(), value="stranger_pkg", dist=_Dist("stranger-gans", "2.0"))
        plugins = isolated_plugins(entry_points=[builtin, optim, stranger])
        registry = plugins.registry
        assert registry.get("generator", "dcgan").plugin == "dcgan"  # the built-in keeps its name...
        assert registry.has("discriminator", "dcgan") and registry.has("recipe", "dcgan-cats")  # ...and everything else
        assert not registry.has("loss", "stranger-loss")  # the clashing plugin is skipped as a whole
        [failure] = plugins.failures()
        assert failure.name == name
        assert failure.error == (
            "its generator 'dcgan' is also registered by the built-in plugin 'dcgan' (distribution ganforge), "
            "which keeps the name"
        )
        assert failure.failure() == f"plugin '{name}' (distribution stranger-gans) is skipped: " + failure.error


def test_a_clash_is_reported_by_ganforge_plugins():
    from typer.testing import CliRunner

    import ganforge_gan
    from ganforge.cli.app import app

    class Stranger:
        @hookimpl
        def register_algorithms(self, register):
            register("gan", Algorithm)

    eps = [FakeEntryPoint("gan", ganforge_gan, dist=_Dist("ganforge")),
           FakeEntryPoint("acme", Stranger(), value="acme_gans", dist=_Dist("acme-gans"))]
    with use_plugins(isolated_plugins(entry_points=eps)):
        result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0
    infos = {p["name"]: p for p in json.loads(result.output)["plugins"]}
    assert infos["gan"]["error"] is None and "gan" in infos["gan"]["provides"]["algorithm"]
    assert infos["acme"]["distribution"] == "acme-gans"
    assert infos["acme"]["error"] == (
        "its algorithm 'gan' is also registered by the built-in plugin 'gan' (distribution ganforge), which keeps the name"
    )


def test_duplicate_entry_point_name_keeps_the_first():
    plugins = isolated_plugins(entry_points=[
        FakeEntryPoint("same", GoodPlugin(), value="pkg_one"), FakeEntryPoint("same", OtherPlugin(), value="pkg_two"),
    ])
    assert plugins.registry.has("discriminator", "tiny")
    assert not plugins.registry.has("discriminator", "other")
    [failure] = plugins.failures()
    assert "same" in failure.error


def test_hook_with_zero_arguments_still_works():
    @hookimpl
    def register_discriminators():
        return None  # pluggy lets an implementation take fewer arguments than the spec

    @hookimpl
    def register_generators(register):
        register("zero-ok", build_tiny_gen, TinyGenConfig)

    plugins = isolated_plugins(
        ("zero", module_plugin("zero", register_discriminators=register_discriminators, register_generators=register_generators)),
        strict=True,
    )
    assert plugins.failures() == []
    assert plugins.registry.list("generator") == ["zero-ok"]


def test_hook_with_unknown_argument_is_reported():
    @hookimpl
    def register_generators(register, extra):
        register("never", build_tiny_gen, TinyGenConfig)

    plugins = isolated_plugins(("bad-args", module_plugin("bad_args", register_generators=register_generators)))
    [failure] = plugins.failures()
    assert failure.name == "bad-args" and "could not be registered" in failure.error


def test_summary_defaults_to_the_builder_docstring():
    registry = isolated_plugins(GoodPlugin()).registry
    assert registry.get("generator", "tiny").summary == "A tiny noise-to-image generator."
    assert registry.get("discriminator", "tiny").summary == "mean pixel"


def test_use_plugins_installs_and_restores():
    outer = isolated_plugins(GoodPlugin())
    inner = isolated_plugins(OtherPlugin())
    set_plugins(outer)
    with use_plugins(inner) as active:
        assert active is inner and get_registry().has("discriminator", "other")
    assert get_plugins() is outer


def test_real_entry_points_include_the_builtin_plugins():
    plugins = PluginSet()
    plugins.load_entry_points()
    registry = plugins.registry
    for name in ("dcgan", "cyclegan", "losses", "augment", "datasets"):
        info = plugins.infos[name]
        assert info.builtin, name
        assert info.distribution == "ganforge"
        assert not info.error and not info.disabled, (name, info.error)
        assert info.provides, name
    assert [i.name for i in plugins.failures()] == []
    assert registry.has("generator", "dcgan") and registry.has("loss", "lsgan") and registry.has("dataset", "shapes")


# --- contract checks -----------------------------------------------------------------------------
def test_builtin_plugins_honour_the_contracts():
    import ganforge_augment
    import ganforge_cyclegan
    import ganforge_datasets
    import ganforge_dcgan
    import ganforge_gan
    import ganforge_losses

    plugins = isolated_plugins(
        *[(m.__name__, m) for m in (ganforge_augment, ganforge_cyclegan, ganforge_datasets, ganforge_dcgan, ganforge_gan,
                                    ganforge_losses)],
        strict=True,
    )
    results = check_plugin(plugins)
    assert results["generator:dcgan"] == results["discriminator:patchgan"] == results["dataset:shapes"] == "ok"
    assert results["dataset:image-folder"] == "skipped: needs data"  # its default names no folder


def test_check_plugin_passes_for_well_behaved_fakes():
    results = check_plugin(isolated_plugins(GoodPlugin(), OtherPlugin(), strict=True))
    assert results == {"generator:tiny": "ok", "discriminator:tiny": "ok", "discriminator:other": "ok"}


def test_check_plugin_reports_load_failures_and_warnings():
    @hookimpl
    def register_loss(register):
        pass

    with pytest.warns(RuntimeWarning):
        plugins = isolated_plugins(("typo", module_plugin("typo", register_loss=register_loss)), entry_points=[broken_ep()])
    with pytest.raises(AssertionError, match=r"(?s)2 problem.*broken.*register_loss"):
        check_plugin(plugins)


@dataclass(frozen=True)
class BadGenConfig:
    noise_size: int = 4


class OutOfRangeGen(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        self.noise_size = 4

    def forward(self, z):
        return torch.full((z.shape[0], 3, 8, 8), 3.0)


class DetachedAug:
    stage = "step"

    def __call__(self, x):
        return x.detach().flip(3)


class NotAScalarLoss(AdversarialLoss):
    def d_loss(self, real_out, fake_out):
        return (real_out - fake_out) ** 2

    def g_loss(self, fake_out, real_out=None):
        return fake_out.mean()


class InconsistentAlgorithm(Algorithm):
    sections = {"generator": "generator"}
    roles = {"generator": "generator", "critic": "discriminator"}
    optimizers = {"generator": ("generator",)}


class SharedRoleAlgorithm(Algorithm):
    sections = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}
    roles = {"g_ab": "generator", "g_ba": "generator", "discriminator": "discriminator"}
    optimizers = {"generators": ("g_ab", "g_ba"), "discriminator": ("discriminator",)}


class BadOptimAlgorithm(SharedRoleAlgorithm):
    optimizers = {"generators": ("g_ab", "g_xx")}


def needs_files(config=None):
    raise DataError("folder not found")


class BadContracts:
    @hookimpl
    def register_generators(self, register):
        register("loud", OutOfRangeGen, BadGenConfig)

    @hookimpl
    def register_augmentations(self, register):
        register("detached", DetachedAug)

    @hookimpl
    def register_losses(self, register):
        register("not-scalar", NotAScalarLoss)

    @hookimpl
    def register_algorithms(self, register):
        register("inconsistent", InconsistentAlgorithm)
        register("shared", SharedRoleAlgorithm)
        register("bad-optim", BadOptimAlgorithm)
        register("not-a-class", lambda: object())

    @hookimpl
    def register_datasets(self, register):
        register("needs-files", needs_files)


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("generator", "loud", r"generator 'loud' \(plugin 'bad'\).*\[-1, 1\]"),
        ("augmentation", "detached", "augmentation 'detached'.*no gradient"),
        ("loss", "not-scalar", "loss 'not-scalar'.*d_loss.*scalar"),
        ("algorithm", "inconsistent", "algorithm 'inconsistent'.*role 'critic'.*'discriminator'.*not in sections"),
        ("algorithm", "bad-optim", "algorithm 'bad-optim'.*group 'generators'.*role 'g_xx'"),
        ("algorithm", "not-a-class", "algorithm 'not-a-class'.*subclass of ganforge.core.components.Algorithm"),
    ],
)
def test_check_component_names_the_broken_component(kind, name, message):
    registry = isolated_plugins(("bad", BadContracts())).registry
    with pytest.raises(AssertionError, match=message):
        check_component(registry, kind, name)


def test_check_component_passes_and_skips():
    registry = isolated_plugins(("bad", BadContracts())).registry
    # The contract holds; training it needs a discriminator, and this set has none.
    assert check_component(registry, "algorithm", "shared") == (
        "skipped: needs other plugins (no registered discriminator of 3 input channels builds from its defaults)")
    assert check_component(registry, "dataset", "needs-files") == "skipped: needs data"
    with pytest.raises(AssertionError, match="generator 'nope' is not registered"):
        check_component(registry, "generator", "nope")


def test_check_component_leaves_torch_random_state_alone():
    registry = isolated_plugins(GoodPlugin()).registry
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_component(registry, "generator", "tiny")
    assert torch.equal(torch.rand(3), expected)


def test_the_cli_sees_only_the_plugins_in_use():
    import json

    from typer.testing import CliRunner

    from ganforge.cli import app

    with use_plugins(isolated_plugins(("good", GoodPlugin()), entry_points=[broken_ep()])):
        result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert set(listed) == {"good", "broken"}
    assert listed["good"]["provides"] == {"generator": ["tiny"], "discriminator": ["tiny"]}
    assert "missing_dependency" in listed["broken"]["error"]


def test_check_component_on_recipes(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[algorithm]\nname = "shared"\n[data]\nname = "needs-files"\n[generator]\nname = "loud"\n'
                    '[discriminator]\nname = "loud-disc"\n[loss]\nname = "not-scalar"\n'
                    '[optim.generators]\nlr = 1e-3\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "good"\n[generator]\nnoise_size = "four"\n')
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('extends = "dcgan-shapes"\n')

    class Recipes:
        @hookimpl
        def register_discriminators(self, register):
            register("loud-disc", TinyDisc)

        @hookimpl
        def register_recipes(self, register):
            register("good", good)
            register("bad", str(bad))  # a plain string path works too
            register("elsewhere", elsewhere)

    import ganforge_optim

    registry = isolated_plugins(("bad", BadContracts()), ("recipes", Recipes()), ("optim", ganforge_optim)).registry
    assert check_component(registry, "recipe", "good") == "ok"
    with pytest.raises(AssertionError, match=r"recipe 'bad' \(plugin 'recipes'\): does not load: option 'generator.noise_size'"):
        check_component(registry, "recipe", "bad")
    result = check_component(registry, "recipe", "elsewhere")
    assert result.startswith("skipped: needs other plugins") and "dcgan-shapes" in result
