"""Plugin contracts v2: a labelled and a paired family written as a separate package against the
documented API only (tests/v2demo), optimisers and schedules as recipe choices, the clash rule, and
errors from plugin code reported as one line naming plugin, kind and component."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from _cli_helpers import QUIET, assert_same_tensors, metrics, ok, one_error_line, run_cli, tensors

sys.path.insert(0, str(Path(__file__).parent / "v2demo"))

import ganforge_augment  # noqa: E402
import ganforge_datasets  # noqa: E402
import ganforge_dcgan  # noqa: E402
import ganforge_gan  # noqa: E402
import ganforge_losses  # noqa: E402
import ganforge_optim  # noqa: E402
import ganforge_v2demo  # noqa: E402
from ganforge import hookimpl  # noqa: E402
from ganforge.core.components import AdversarialLoss  # noqa: E402
from ganforge.testing import FakeEntryPoint, check_plugin, isolated_plugins, use_plugins  # noqa: E402

TINY = [*QUIET, "--set", "log.every=1"]


def _error(result) -> str:
    """The one 'error:' line a user sees (without the prefix); asserts there is exactly one."""
    out = one_error_line(result)
    return next(line for line in out.splitlines() if line.startswith("error:"))[len("error: "):].strip()


class _Dist:
    def __init__(self, name: str):
        self.metadata, self.version = {"Name": name}, "1.0"


def _builtins() -> list[FakeEntryPoint]:
    mods = {"gan": ganforge_gan, "dcgan": ganforge_dcgan, "losses": ganforge_losses, "augment": ganforge_augment,
            "datasets": ganforge_datasets, "optim": ganforge_optim}
    return [FakeEntryPoint(name, mod, dist=_Dist("ganforge")) for name, mod in mods.items()]


@pytest.fixture
def demo():
    """The demo package next to the built-ins it builds on, loaded as a third-party distribution."""
    eps = [*_builtins(), FakeEntryPoint("v2demo", ganforge_v2demo, dist=_Dist("ganforge-v2demo"))]
    with use_plugins(isolated_plugins(entry_points=eps, strict=True)) as plugins:
        yield plugins


# --- a separate package can write a labelled and a paired family ----------------------------------
def test_check_plugin_trains_every_algorithm_two_steps(demo):
    results = check_plugin(demo)
    assert results["algorithm:demo-cgan"] == "ok"  # trained 2 steps on synthetic labelled data, sampled by class
    assert results["algorithm:demo-paired"] == "ok"  # trained 2 steps on synthetic pairs, translated
    # Only the plugin under test is checked: the built-ins it builds on are used, not checked.
    assert {key.split(":")[1] for key in results} == {
        "demo-cond-gen", "demo-sketch-gen", "demo-proj-disc", "demo-pair-disc", "demo-cats-by-breed",
        "demo-cats-with-sketches", "demo-cgan", "demo-paired", "demo-cgan-cats", "demo-sketch2cat"}
    builtins = check_plugin(demo, ["optim"])
    assert builtins["optimizer:rmsprop"] == "ok" and builtins["schedule:cosine"] == "ok"


def test_labelled_family_trains_samples_by_class_and_stores_class_names(demo, tmp_path):
    run = tmp_path / "cgan"
    ok(run_cli("train", "--recipe", "demo-cgan-cats", "--steps", 4, "-o", run, *TINY))
    grid = tmp_path / "grid.png"
    ok(run_cli("sample", "-c", run, "-o", grid, "--num", 8))  # one row per class
    ok(run_cli("sample", "-c", run, "-o", tmp_path / "grumpy.png", "--num", 4, "--class", "grumpy",
               "--interpolate", tmp_path / "walk.gif"))
    assert (tmp_path / "grumpy.png").is_file() and (tmp_path / "walk.gif").is_file()
    from ganforge.io.inference import load_for_inference

    loaded = load_for_inference(run, demo.registry)
    assert loaded.class_names() == ("grumpy", "russian_blue")
    assert loaded.data.domains["images"].fields == {"image": "image", "label": "label"}
    assert loaded.data.domains["images"].size == 245

    bad = run_cli("sample", "-c", run, "-o", tmp_path / "x.png", "--class", "grumpi")
    assert bad.exit_code == 2
    assert _error(bad) == (
        "unknown class 'grumpi' (did you mean 'grumpy'?); this checkpoint knows: grumpy, russian_blue"
    )


def test_paired_family_translates_with_the_direction_names_in_the_checkpoint(demo, tmp_path):
    run = tmp_path / "paired"
    ok(run_cli("train", "--recipe", "demo-sketch2cat", "--steps", 3, "-o", run, *TINY))
    src = Path(__file__).parent.parent.parent / "shared" / "data" / "grumpify-cats" / "grumpy"
    from _cli_helpers import DATA

    src = DATA / "grumpify-cats" / "grumpy"
    out = tmp_path / "out"
    ok(run_cli("translate", "-c", run, "-i", src, "-o", out, "--no-progress"))  # default: its only direction
    assert len(list(out.glob("*.png"))) == len(list(src.glob("*.png")))
    bad = run_cli("translate", "-c", run, "-i", src, "-o", out, "--direction", "a2b", "--no-progress")
    assert bad.exit_code == 2
    assert _error(bad) == "unknown --direction 'a2b'; this checkpoint translates: sketch2photo"
    # A noise model asked to translate, a translator asked for a class: one line each.
    no_class = run_cli("sample", "-c", run, "-o", tmp_path / "s.png", "--class", "grumpy")
    assert "cannot sample by class: its model was not trained with class labels" in _error(no_class)


@pytest.mark.parametrize("recipe,steps", [("demo-cgan-cats", 3), ("demo-sketch2cat", 3)])
def test_labelled_and_paired_resume_is_bit_exact(demo, tmp_path, recipe, steps):
    straight, split = tmp_path / "straight", tmp_path / "split"
    ok(run_cli("train", "--recipe", recipe, "--steps", 2 * steps, "-o", straight, *TINY))
    ok(run_cli("train", "--recipe", recipe, "--steps", 2 * steps, "-o", split, *TINY, "--stop-at", steps))
    ok(run_cli("train", "--resume", split, "--no-progress"))
    end = f"step-{2 * steps:08d}"
    for name in ("model.safetensors", "state.safetensors"):
        assert_same_tensors(straight / "checkpoints" / end / name, split / "checkpoints" / end / name)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("time", "images_per_s")} for r in rows]  # noqa: E731
    assert strip(metrics(straight)) == strip(metrics(split))


def test_paired_fields_get_the_identical_real_stage_augmentation(demo):
    """A paired dataset whose target equals its image must still be equal after deluxe (same crop and
    flip for every image field); labels are left alone."""
    from ganforge.data.folders import ImageTensorDataset
    from ganforge.core.recipes import load_recipe
    from ganforge.core.registry import Component
    from ganforge.train.loop import forget_accelerator_state
    from ganforge.train.session import TrainRun

    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    registry = demo.registry
    registry.add(Component("dataset", "same-pairs", lambda: {"pairs": ImageTensorDataset(
        images, labels=torch.arange(6) % 3, class_names=["x", "y", "z"], paired={"target": images.clone()})},
        None, "", "test"))
    recipe = load_recipe("demo-sketch2cat", registry, ['data.name="same-pairs"', "augment.deluxe.scale=1.5",
                                                       "train.threads=1"])
    run = TrainRun(recipe, registry, Path("unused"))
    try:
        run.build()
        for _ in range(3):
            batch = run.next_batch()
            fields = batch.fields("pairs")
            assert torch.equal(fields["image"], fields["target"])
            assert not torch.equal(fields["image"], batch.fields("pairs")["image"].new_zeros(1))
            assert fields["label"].dtype == torch.long and set(fields["label"].tolist()) <= {0, 1, 2}
        assert not torch.equal(fields["image"], torch.stack([images[i] for i in range(len(fields["image"]))]).float())
    finally:
        forget_accelerator_state(False)


# --- optimisers and schedules ---------------------------------------------------------------------
def test_optimisers_and_schedules_are_recipe_choices_with_exact_resume(tmp_path):
    args = [*TINY, "--set", "optim.discriminator.name=rmsprop", "--set", "optim.discriminator.lr=1e-4",
            "--set", 'optim.generator.schedule="cosine"', "--set", "optim.generator.schedule.warmup=2",
            "--set", "train.batch_size=4", "--set", "data.num_images=16"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 6, "-o", straight, *args))
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 6, "-o", split, *args, "--stop-at", 3))
    ok(run_cli("train", "--resume", split, "--no-progress"))
    end = "step-00000006"
    assert_same_tensors(straight / "checkpoints" / end / "state.safetensors", split / "checkpoints" / end / "state.safetensors")
    keys = tensors(split / "checkpoints" / end / "state.safetensors")
    assert any(k.startswith("optim.discriminator.") and k.endswith(".square_avg") for k in keys)  # RMSprop's state
    written = (straight / "recipe.toml").read_text()
    assert 'name = "rmsprop"' in written and "betas" not in written.split("[optim.discriminator]")[1].split("[")[0]
    factors = [r["lr_factor"] for r in metrics(straight)]
    assert factors[0] == pytest.approx(0.5) and factors[1] < 1.0  # warm-up, then cosine decay (generator group)


def test_every_bad_optimiser_option_is_reported_at_once():
    result = run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, *QUIET,
                     "--set", "optim.discriminator.name=sgd", "--set", "optim.discriminator.alpha=0.9",
                     "--set", "optim.generator.schedule.name=cosinus", "--set", "train.stepz=3")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "3 problems in recipe dcgan-shapes:" in text
    assert "unknown option 'optim.discriminator.alpha'" in text and "optimizer 'sgd' accepts: lr, momentum" in text
    assert "unknown schedule 'cosinus' (did you mean 'cosine'?)" in text
    assert "unknown option 'train.stepz'" in text and "did you mean 'steps'" in text


# --- losses see both sides; a one-sided g_loss is a clear error ----------------------------------
class _OldStyleLoss(AdversarialLoss):
    """A loss whose g_loss takes the fake outputs only."""

    def d_loss(self, real_out, fake_out):
        return torch.relu(1 - real_out.float()).mean() + torch.relu(1 + fake_out.float()).mean()

    def g_loss(self, fake_out):
        return -fake_out.float().mean()


class _TwoSidedLoss(_OldStyleLoss):
    uses_real_in_g = True
    seen: list = []

    def g_loss(self, fake_out, real_out=None):
        _TwoSidedLoss.seen.append(real_out is not None and real_out.shape == fake_out.shape)
        return (real_out.float().mean() - fake_out.float()).mean()


class _Losses:
    @hookimpl
    def register_losses(self, register):
        register("old-style", _OldStyleLoss)
        register("two-sided", _TwoSidedLoss)


@pytest.mark.parametrize("recipe", ["dcgan-shapes", "demo-sketch2cat"])
def test_two_sided_losses_train_in_every_family_and_one_sided_ones_are_named(tmp_path, recipe):
    eps = [*_builtins(), FakeEntryPoint("v2demo", ganforge_v2demo, dist=_Dist("ganforge-v2demo")),
           FakeEntryPoint("my-losses", _Losses(), dist=_Dist("my-losses"))]
    _TwoSidedLoss.seen = []
    with use_plugins(isolated_plugins(entry_points=eps, strict=True)):
        ok(run_cli("train", "--recipe", recipe, "--steps", 2, "-o", tmp_path / "r", *TINY, "--set", "loss.name=two-sided"))
        assert _TwoSidedLoss.seen == [True, True]
        bad = run_cli("train", "--recipe", recipe, "--steps", 2, "-o", tmp_path / "old", *TINY, "--set", "loss.name=old-style")
    assert bad.exit_code != 0
    line = _error(bad)
    assert "loss 'old-style'" in line and "g_loss takes only the fake outputs" in line
    assert not (tmp_path / "old" / "checkpoints").exists()


# --- errors from plugin code: one line naming plugin, kind and component ---------------------------
class _Broken:
    @hookimpl
    def register_generators(self, register):
        register("dict-gen", lambda: {"not": "a module"})

    @hookimpl
    def register_discriminators(self, register):
        register("tuple-disc", _TupleDisc)
        register("raising-disc", _RaisingDisc)


class _TupleDisc(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, x):
        return self.lin(x.mean((2, 3))), x


class _RaisingDisc(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError("out of coffee")


@pytest.fixture
def broken():
    eps = [*_builtins(), FakeEntryPoint("broken", _Broken(), value="broken_gans", dist=_Dist("broken-gans"))]
    with use_plugins(isolated_plugins(entry_points=eps)) as plugins:
        yield plugins


@pytest.mark.parametrize("override,expected", [
    ("generator.name=dict-gen", "generator 'dict-gen' (plugin 'broken' from broken-gans) built a dict, not a torch.nn.Module"),
    ("discriminator.name=tuple-disc", "discriminator 'tuple-disc' (plugin 'broken' from broken-gans) returned a tuple "
                                      "from forward (as 'discriminator'), not a tensor"),
    ("discriminator.name=raising-disc", "discriminator 'raising-disc' (plugin 'broken' from broken-gans) failed while "
                                        "building: RuntimeError: out of coffee"),
    ("generator.name=resnet", "the 'gan' algorithm needs a noise-to-image generator (one with a `noise_size`); "
                              "ResnetGenerator maps images to images"),
])
def test_plugin_code_errors_are_one_line(broken, tmp_path, override, expected):
    if override.startswith("generator.name=resnet"):
        import ganforge_cyclegan

        broken.add(ganforge_cyclegan, name="cyclegan")
    result = run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", tmp_path / "r", *QUIET, "--set", override)
    assert result.exit_code == 2, result.output
    assert _error(result) == expected
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback_of_plugin_code(broken, tmp_path):
    from typer.testing import CliRunner

    from ganforge.cli.app import app

    result = CliRunner().invoke(app, ["--debug", "train", "--recipe", "dcgan-shapes", "--steps", "1", "-o",
                                      str(tmp_path / "r"), *QUIET, "--set", "discriminator.name=raising-disc"])
    assert result.exit_code == 2
    assert "Traceback" in result.output and 'raise RuntimeError("out of coffee")' in result.output


def test_debug_shows_the_traceback_of_a_plugin_that_fails_to_import(monkeypatch):
    from typer.testing import CliRunner

    from ganforge.cli.app import app

    def missing():
        import ganforge_no_such_dependency  # noqa: F401

    try:
        missing()
    except ImportError as exc:
        error = exc
    eps = [*_builtins(), FakeEntryPoint("needs-dep", error=error, value="needs_dep", dist=_Dist("needs-dep"))]
    with use_plugins(isolated_plugins(entry_points=eps)):
        quiet = CliRunner().invoke(app, ["recipes"])
        loud = CliRunner().invoke(app, ["--debug", "recipes"])
    assert "Traceback" not in quiet.output
    assert "traceback of plugin 'needs-dep'" in loud.output and "ganforge_no_such_dependency" in loud.output


def test_an_undeclared_derived_network_is_named(tmp_path):
    from ganforge_gan import GANAlgorithm

    class Sneaky(GANAlgorithm):
        derived = {}  # stores generator_ema (ema > 0) without declaring it

    class Plugin:
        @hookimpl
        def register_algorithms(self, register):
            from ganforge_gan import GANConfig

            register("sneaky", Sneaky, GANConfig)

    eps = [*_builtins(), FakeEntryPoint("sneaky", Plugin(), value="sneaky", dist=_Dist("sneaky"))]
    with use_plugins(isolated_plugins(entry_points=eps)):
        result = run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", tmp_path / "r", *QUIET,
                         "--set", "algorithm.name=sneaky", "--set", "algorithm.ema=0.9")
    assert result.exit_code == 2
    assert _error(result) == (
        "algorithm 'sneaky' (plugin 'sneaky') stores a network 'generator_ema' for inference that is "
        "neither one of its roles (generator, discriminator) nor declared in `derived`"
    )
