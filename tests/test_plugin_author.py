"""What a plugin author meets, from the docs alone: an AC-GAN plugin written as a third party would
(its own generator, a two-headed discriminator, an algorithm and a recipe), checked with
``ganforge.testing.check_plugin``, trained, and evaluated with a metric that needs its own features."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _cli_helpers import DATA, QUIET, metrics, ok, one_error_line, run_cli
from ganforge import hookimpl
from ganforge.core.components import Algorithm, Capabilities, SampleRequest, Schedule
from ganforge.eval.interfaces import Metric
from ganforge.testing import FakeEntryPoint, check_plugin, isolated_plugins, use_plugins

HAS_DATA = (DATA / "grumpify-cats" / "grumpy").is_dir() and (DATA / "apple2orange" / "apple").is_dir()
needs_data = pytest.mark.skipif(not HAS_DATA, reason=f"no images in {DATA}")
RECORD: dict[str, list] = {}  # what the AC-GAN plugin saw, for the tests to read


def _record(key: str, value) -> None:
    RECORD.setdefault(key, []).append(value)


@pytest.fixture(autouse=True)
def _fresh_record():
    RECORD.clear()
    yield


class _Dist:
    """A stand-in for an installed distribution's metadata."""

    def __init__(self, name: str, version: str = "1.0"):
        self.metadata, self.version = {"Name": name}, version


# --- the stranger's AC-GAN plugin --------------------------------------------------------------------
@dataclass(frozen=True)
class AcGenConfig:
    noise_size: int = 16
    num_classes: int = 2
    image_size: int = 32
    width: int = 8


class AcGen(nn.Module):
    """G(z, labels) -> images; ``shrink`` draws images half the configured size (a bug)."""

    shrink = False

    def __init__(self, config: AcGenConfig):
        super().__init__()
        self.noise_size, self.num_classes = config.noise_size, config.num_classes
        self.size = config.image_size // (2 if self.shrink else 1)
        self.embed = nn.Embedding(config.num_classes, config.noise_size)
        self.fc = nn.Linear(2 * config.noise_size, 3 * self.size * self.size)

    def forward(self, z, labels):
        h = self.fc(torch.cat([z, self.embed(labels)], dim=1))
        return torch.tanh(h).view(len(z), 3, self.size, self.size)


class SmallGen(AcGen):
    shrink = True


@dataclass(frozen=True)
class AcDiscConfig:
    num_classes: int = 2  # the size of the class head (follows the data)
    image_size: int = 32
    width: int = 8


class AcDisc(nn.Module):
    """Two heads: D(images) -> (real/fake logits [B], class logits [B, classes])."""

    multiple_outputs = True

    def __init__(self, config: AcDiscConfig):
        super().__init__()
        w, s = config.width, config.image_size // 4
        self.classes = config.num_classes  # not `num_classes`: D takes no labels
        self.trunk = nn.Sequential(nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(w, w, 4, 2, 1),
                                   nn.LeakyReLU(0.2), nn.Flatten())
        self.adv = nn.Linear(w * s * s, 1)
        self.cls = nn.Linear(w * s * s, config.num_classes)

    def forward(self, x):
        h = self.trunk(x)
        return self.adv(h).squeeze(1), self.cls(h)


@dataclass(frozen=True)
class WarmConfig:
    warmup: int = 2


class RecordingWarmup(Schedule):
    def __init__(self, config: WarmConfig):
        self.config = config

    def factor(self, step, total):
        _record("factor_steps", step)
        return min(1.0, (step + 1) / self.config.warmup)


@dataclass(frozen=True)
class ACGANConfig:
    class_weight: float = 1.0


class ACGAN(Algorithm):
    sections = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}
    roles = {"generator": "generator", "discriminator": "discriminator"}
    optimizers = {"generator": ("generator",), "discriminator": ("discriminator",)}
    domains = ("images",)
    fields = {"images": ("label",)}

    def __init__(self, config: ACGANConfig):
        self.config = config

    def setup(self, run):
        self.noise_size = int(run.unwrap("generator").noise_size)

    def train_step(self, run, batch):
        G, D = run.nets["generator"], run.nets["discriminator"]
        loss = run.components["loss"]
        real, labels = batch["images"], batch.field("images", "label")
        _record("step", run.step)
        _record("batch", (tuple(real.shape), tuple(labels.shape)))
        _record("training", (G.training, D.training))
        fake = G(torch.randn(len(real), self.noise_size, device=run.device), labels)
        (adv_r, cls_r), (adv_f, _) = D(run.augment(real)), D(run.augment(fake.detach()))
        run.report_real_scores(adv_r)
        loss_d = loss.d_loss(adv_r, adv_f) + self.config.class_weight * F.cross_entropy(cls_r.float(), labels)
        run.optimizers["discriminator"].zero_grad(set_to_none=True)
        run.backward(loss_d)
        run.optimizers["discriminator"].step()
        adv, cls = D(run.augment(fake))
        loss_g = loss.g_loss(adv, None) + self.config.class_weight * F.cross_entropy(cls.float(), labels)
        run.optimizers["generator"].zero_grad(set_to_none=True)
        run.backward(loss_g)
        run.optimizers["generator"].step()
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item()}

    def capabilities(self, data=None):
        return Capabilities(sample=True, classes=True)

    def progress_inputs(self, run, num):
        g = torch.Generator().manual_seed(run.seed)
        return {"z": torch.randn(num, self.noise_size, generator=g), "labels": torch.arange(num) % 2}

    @torch.no_grad()
    def progress_grid(self, nets, inputs):
        _record("grid_training", tuple(net.training for net in nets.values()))
        gen = nets["generator"]
        return gen(inputs["z"], inputs["labels"]).clamp(-1, 1), 2

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        _record("sample_training", tuple(net.training for net in nets.values()))
        gen = nets["generator"]
        g = torch.Generator().manual_seed(request.seed)
        z = torch.randn(request.num, int(gen.noise_size), generator=g)
        cls = request.class_index if request.class_index is not None else 0
        return gen(z, torch.full((request.num,), cls, dtype=torch.long)).clamp(-1, 1), 2


RECIPE = """
description = "AC-GAN on two cat breeds"
[algorithm]
name = "test-acgan"
[data]
name = "labelled-folders"
folders = ["grumpify-cats/grumpy", "grumpify-cats/russian_blue"]
image_size = 32
[generator]
name = "{generator}"
[discriminator]
name = "acg-disc"
[loss]
name = "hinge"
[optim.generator]
lr = 2e-4
[optim.generator.schedule]
name = "acg-warmup"
[optim.discriminator]
lr = 2e-4
[train]
steps = 100
batch_size = 4
"""


class AcganPlugin:
    """The third-party plugin: registered through hooks exactly as the docs show."""

    def __init__(self, recipe: Path | None = None, generator=AcGen):
        self.recipe, self.generator = recipe, generator

    @hookimpl
    def register_generators(self, register):
        register("acg-gen" if self.generator is AcGen else "acg-small-gen", self.generator, AcGenConfig)

    @hookimpl
    def register_discriminators(self, register):
        register("acg-disc", AcDisc, AcDiscConfig)

    @hookimpl
    def register_schedules(self, register):
        register("acg-warmup", RecordingWarmup, WarmConfig)

    @hookimpl
    def register_algorithms(self, register):
        register("test-acgan", ACGAN, ACGANConfig)

    @hookimpl
    def register_recipes(self, register):
        if self.recipe is not None:
            register("acgan-cats", self.recipe)


def _recipe(tmp_path: Path, generator: str = "acg-gen") -> Path:
    path = tmp_path / "acgan-cats.toml"
    path.write_text(RECIPE.format(generator=generator), encoding="utf-8")
    return path


def _builtin_modules():
    import ganforge_cgan
    import ganforge_datasets
    import ganforge_gan
    import ganforge_losses
    import ganforge_optim

    return [ganforge_gan, ganforge_cgan, ganforge_datasets, ganforge_losses, ganforge_optim]


def _installed_builtins() -> list:
    """The installed built-in plugins' entry points (what a user's machine has)."""
    from importlib.metadata import entry_points

    return [ep for ep in entry_points(group="ganforge") if ep.dist is not None and ep.dist.metadata["Name"] == "ganforge"]


# --- 1. check_plugin checks the plugin it is given, on synthetic data --------------------------------
def test_check_plugin_trains_the_plugins_algorithm_with_only_that_plugin_installed(tmp_path, monkeypatch):
    """Only the stranger's plugin in the set: its recipe builds on built-in components (hinge, adam,
    labelled-folders), which come from the installed built-ins; the algorithm trains two steps on
    synthetic labelled images of its declared shape, never on the recipe's real folders."""
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "no-data-here"))
    results = check_plugin(isolated_plugins(("acgan", AcganPlugin(_recipe(tmp_path))), strict=True))
    assert results == {
        "generator:acg-gen": "ok", "discriminator:acg-disc": "ok", "algorithm:test-acgan": "ok",
        "schedule:acg-warmup": "ok", "recipe:acgan-cats": "ok",
    }
    assert RECORD["step"] == [0, 1]  # two steps
    assert RECORD["batch"] == [((2, 3, 32, 32), (2,))] * 2  # images of the recipe's size, with labels


def test_check_plugin_never_checks_or_trains_other_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "no-data-here"))
    plugins = isolated_plugins(*_builtin_modules(), ("acgan", AcganPlugin(_recipe(tmp_path))), strict=True)
    results = check_plugin(plugins)
    assert set(results) == {"generator:acg-gen", "discriminator:acg-disc", "algorithm:test-acgan",
                            "schedule:acg-warmup", "recipe:acgan-cats"}
    assert set(results.values()) == {"ok"}
    assert len(RECORD["step"]) == 2  # only the plugin's own algorithm trained
    # Built-ins are checked when they are what the set is about.
    import ganforge_optim

    assert check_plugin(plugins, [ganforge_optim])["schedule:cosine"] == "ok"


def test_an_algorithm_without_a_recipe_is_composed_from_its_plugin_and_the_builtins(tmp_path):
    results = check_plugin(isolated_plugins(("acgan", AcganPlugin()), strict=True))
    assert results["algorithm:test-acgan"] == "ok"
    assert RECORD["batch"] == [((2, 3, 32, 32), (2,))] * 2  # synthetic labelled images, 32x32


# --- 2. a generator of the wrong size is named at the first step --------------------------------------
@needs_data
def test_a_generator_of_the_wrong_size_is_named_at_the_first_training_step(tmp_path):
    eps = [*_installed_builtins(),
           FakeEntryPoint("acgan", AcganPlugin(_recipe(tmp_path, "acg-small-gen"), SmallGen), value="acgan_pkg",
                          dist=_Dist("stranger-acgan"))]
    with use_plugins(isolated_plugins(entry_points=eps)):
        out = one_error_line(run_cli("train", "--recipe", "acgan-cats", "--steps", 1, "-o", tmp_path / "run", *QUIET,
                                     "--set", "data.max_per_class=4"))
    assert "generator 'acg-small-gen' (plugin 'acgan' from stranger-acgan)" in out
    assert "returned [4, 3, 16, 16] for noise [4, 16], but the data's images are 32x32" in out
    assert "it must return [4, 3, 32, 32]" in out
    assert "algorithm 'test-acgan'" not in out and "mat1" not in out


def test_the_first_step_checks_name_the_network_and_keep_the_tensor_rule():
    from ganforge.core.errors import PluginCodeError
    from ganforge.core.registry import Component
    from ganforge.train.checks import watch_outputs

    class Crop(nn.Module):  # an image-to-image generator that loses a border
        def forward(self, x):
            return x[..., 1:-1, 1:-1]

    class Pair(nn.Module):
        multiple_outputs = True

        def forward(self, x):
            return x.mean(dim=(1, 2, 3)), x

    class Dict(nn.Module):
        def forward(self, x):
            return {"score": x}

    def comp(kind, name):
        return Component(kind, name, None, None, "", "thirdparty", "third-dist")

    x = torch.zeros(2, 3, 16, 16)
    nets = {"g_ab": (comp("generator", "crop"), Crop()), "critic": (comp("discriminator", "pair"), Pair()),
            "other": (comp("discriminator", "dict"), Dict())}
    handles = watch_outputs(nets, image_size=(16, 16))
    try:
        with pytest.raises(PluginCodeError) as info:
            nets["g_ab"][1](x)
        message = info.value.message
        assert "generator 'crop' (plugin 'thirdparty' from third-dist)" in message
        assert "image-to-image" in message and "returned [2, 3, 14, 14]" in message
        assert "its input is [2, 3, 16, 16]: it must return [2, 3, 16, 16]" in message
        nets["critic"][1](x)  # a tuple of tensors from a `multiple_outputs` network is fine
        with pytest.raises(PluginCodeError, match="discriminator 'dict'.*returned a dict"):
            nets["other"][1](x)
    finally:
        for handle in handles:
            handle.remove()
    assert nets["g_ab"][1](x).shape == (2, 3, 14, 14)  # the hooks are gone after the first step


# --- 3. one clash rule, one sentence --------------------------------------------------------------------
class Stranger:
    @hookimpl
    def register_generators(self, register):
        register("dcgan", AcGen, AcGenConfig)  # a name the built-in dcgan plugin has

    @hookimpl
    def register_losses(self, register):
        register("stranger-loss", lambda: None)


def test_isolated_plugins_follow_the_documented_clash_rule():
    import ganforge_dcgan

    for order in (("zzz", Stranger()), ganforge_dcgan), (ganforge_dcgan, ("aaa", Stranger())):
        plugins = isolated_plugins(*order)
        assert plugins.registry.get("generator", "dcgan").plugin == "ganforge_dcgan"  # the built-in keeps it
        assert not plugins.registry.has("loss", "stranger-loss")  # the other plugin is skipped whole
        [failure] = plugins.failures()
        assert failure.name in ("zzz", "aaa") and plugins.infos["ganforge_dcgan"].builtin


def test_a_clash_warning_is_one_sentence_naming_both_plugins_and_the_winner(monkeypatch):
    import ganforge_dcgan

    from ganforge.core.plugins import get_registry, set_plugins

    eps = [FakeEntryPoint("dcgan", ganforge_dcgan, dist=_Dist("ganforge", "0.1.0")),
           FakeEntryPoint("acme", Stranger(), value="acme_gans", dist=_Dist("acme-gans", "2.0"))]
    monkeypatch.setattr("ganforge.core.plugins.entry_points", lambda group: eps)
    set_plugins(None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = get_registry()
    assert registry.get("generator", "dcgan").plugin == "dcgan"
    [message] = [str(w.message) for w in caught if "acme" in str(w.message)]
    assert message == (
        "ganforge plugin 'acme' (distribution acme-gans) is skipped: its generator 'dcgan' is also registered "
        "by the built-in plugin 'dcgan' (distribution ganforge), which keeps the name"
    )


# --- 4. a metric says which features it needs --------------------------------------------------------------
class PixelMean(Metric):
    """Distance between the mean pixel features of the two sets."""

    extractor = "pixels"
    primary = "pixel_gap"

    def compute(self, real, fake):
        return {"pixel_gap": float((real.mean(0) - fake.mean(0)).norm())}


class PixelMetricPlugin:
    @hookimpl
    def register_metrics(self, register):
        register("my-pixel-metric", PixelMean)


def _no_network(tmp_path, monkeypatch):
    inception = pytest.importorskip("ganforge_metrics.inception")
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(inception, "installed_package_file", lambda: None)


def test_a_metric_that_needs_pixels_gets_them_and_a_missing_network_names_the_alternative(tmp_path, monkeypatch):
    import ganforge_metrics

    from ganforge.eval.evaluator import Evaluator
    from ganforge.eval.interfaces import NetworkNotInstalled

    _no_network(tmp_path, monkeypatch)
    registry = isolated_plugins(ganforge_metrics, ("pix", PixelMetricPlugin())).registry
    evaluator = Evaluator(registry, ["my-pixel-metric"], progress=False)
    assert evaluator.extractor_name == "pixels"
    evaluator.load()  # nothing to install
    with pytest.raises(NetworkNotInstalled) as info:
        Evaluator(registry, ["fid"], progress=False).load()
    assert "--extractor pixels" in info.value.hint and "ganforge metrics install" in info.value.hint
    with pytest.raises(NetworkNotInstalled) as info:
        Evaluator(registry, ["fid"], progress=False, option="--set eval.extractor={}").load()
    assert "--set eval.extractor=pixels" in info.value.hint


def test_eval_and_training_scores_use_the_metrics_extractor(tmp_path, monkeypatch):
    _no_network(tmp_path, monkeypatch)
    eps = [*_installed_builtins(), FakeEntryPoint("pix", PixelMetricPlugin(), value="pix_metric", dist=_Dist("pix"))]
    run = tmp_path / "run"
    with use_plugins(isolated_plugins(entry_points=eps)):
        ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 2, "-o", run, *QUIET, "--set", "train.batch_size=4",
                   "--set", "data.num_images=16", "--set", "log.num_samples=4", "--set", "log.gif=false",
                   "--set", "eval.every=2", "--set", "eval.metric=my-pixel-metric", "--set", "eval.num=12"))
        scored = [r["eval"] for r in metrics(run) if "eval" in r]
        assert scored and set(scored[0]) == {"pixels/pixel_gap"}
        ok(run_cli("eval", run, "--metric", "my-pixel-metric", "-n", 12, "-o", tmp_path / "e.json", "--no-progress"))
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["extractor"] == "pixels" and set(result["scores"]) == {"pixels/pixel_gap"}


# --- 5. num_classes follows the data; --data ROOT works for labelled recipes ---------------------------
TINY_CGAN = [*QUIET, "--set", "train.batch_size=4", "--set", "generator.width=8", "--set", "discriminator.width=8",
             "--set", "data.max_per_class=4", "--set", "log.num_samples=4", "--set", "log.gif=false",
             "--set", "log.plots=false"]


@needs_data
def test_data_root_makes_its_sub_folders_the_classes_and_num_classes_follows(tmp_path):
    import tomllib

    from ganforge.core.plugins import get_registry
    from ganforge.io.inference import load_for_inference

    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "cgan-cats-fruit", "--data", DATA / "grumpify-cats", "--steps", 1, "-o", run,
               *TINY_CGAN))
    written = tomllib.loads((run / "recipe.toml").read_text())
    assert written["generator"]["num_classes"] == written["discriminator"]["num_classes"] == 2
    assert written["data"]["folders"] == []
    assert load_for_inference(run, get_registry()).class_names() == ("grumpy", "russian_blue")


@needs_data
def test_an_explicit_num_classes_that_disagrees_with_the_data_is_one_clear_error(tmp_path):
    out = one_error_line(run_cli("train", "--recipe", "cgan-cats-fruit", "--steps", 1, "-o", tmp_path / "run",
                                 *TINY_CGAN, "--set", "discriminator.num_classes=5"))
    assert "knows 5 classes" in out and "the data has 4 (grumpy, russian_blue, apple, orange)" in out
    assert "remove discriminator.num_classes" in out and not (tmp_path / "run" / "checkpoints").exists()


def test_num_classes_of_data_that_cannot_list_its_classes_is_filled_in_from_the_built_dataset():
    """A dataset whose config cannot list its classes: the trainer fills num_classes in once the
    dataset is built (apply_data_classes); an explicit count must match the data."""
    import ganforge_losses
    import ganforge_optim

    from ganforge.core.errors import RecipeError
    from ganforge.core.recipes import apply_data_classes, resolve
    from ganforge.core.registry import Component

    registry = isolated_plugins(ganforge_optim, ganforge_losses, ("acgan", AcganPlugin())).registry
    registry.add(Component("dataset", "opaque", lambda: None, None, "", "test"))
    raw = {"algorithm": {"name": "test-acgan"}, "data": {"name": "opaque"}, "generator": {"name": "acg-gen"},
           "discriminator": {"name": "acg-disc", "num_classes": 3}, "loss": {"name": "hinge"}}
    recipe = resolve(raw, registry)
    assert recipe.classes_from_data == ("generator",)  # the discriminator's count is the recipe's own
    done = apply_data_classes(recipe, registry, ["a", "b", "c"])
    assert done.parts["generator"].config.num_classes == 3 and done.raw["generator"]["num_classes"] == 3
    assert done.classes_from_data == () and recipe.parts["generator"].config.num_classes == 2  # a copy
    with pytest.raises(RecipeError, match=r"knows 3 classes but the data has 2 \(a, b\)"):
        apply_data_classes(recipe, registry, ["a", "b"])


# --- 6. the documented inference and schedule conventions hold -------------------------------------------
def test_documented_modes_step_origin_and_two_head_convention(tmp_path, monkeypatch):
    from ganforge.core import components
    from ganforge.train import run as run_module

    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "no-data-here"))
    check_plugin(isolated_plugins(("acgan", AcganPlugin(_recipe(tmp_path))), strict=True))
    assert RECORD["training"] == [(True, True)] * 2  # training mode in train_step
    assert RECORD["step"] == [0, 1] and RECORD["factor_steps"][0] == 0  # 0-based, the schedule before step 0
    assert RECORD["grid_training"] == [(False, False)]  # eval_networks (G and D), in evaluation mode
    assert set(RECORD["sample_training"]) == {(False, False)}

    docs = components.__doc__ + components.Algorithm.__doc__
    assert "multiple_outputs" in docs and "class_logits" in docs and "first element" in docs
    for method in ("progress_grid", "sample", "interpolate"):
        doc = getattr(components.Algorithm, method).__doc__
        assert "[-1, 1]" in doc and "evaluation mode" in doc and ("[N, 3, H, W]" in doc or "[F, 3, H, W]" in doc)
    assert "evaluation mode" in components.Algorithm.eval_networks.__doc__
    schedule = components.Schedule.__doc__
    assert "factor(0, total)" in schedule and "warmup" in schedule and "lr_factor" in schedule
    assert "first group" in schedule and "0-based" in run_module.Run.optimizers.__doc__
