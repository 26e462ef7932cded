"""Recipes: inheritance, --set overrides, validation messages and the written (complete) recipe."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from ganforge import hookimpl
from ganforge.core.components import Algorithm
from ganforge.core.errors import RecipeError, UnknownComponentError
import ganforge_optim
from ganforge_optim.optimizers import AdamConfig
from ganforge.core.recipes import apply_overrides, load_recipe, parse_override, recipe_from_toml, resolve
from ganforge.testing import isolated_plugins


# --- a fake plugin set ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeAlgoConfig:
    d_steps: int = 1


class FakeAlgorithm(Algorithm):
    sections = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}
    roles = {"generator": "generator", "discriminator": "discriminator"}
    optimizers = {"generator": ("generator",), "discriminator": ("discriminator",)}

    def __init__(self, config: FakeAlgoConfig):
        self.config = config


@dataclass(frozen=True)
class GenConfig:
    image_size: int = 64
    width: int = 32
    scale: float = 1.0
    norm: Literal["batch", "instance", "none"] = "batch"
    bias: bool = False
    label: str = "gen"
    channels: tuple[int, ...] = (8, 16)
    betas: tuple[float, float] = (0.5, 0.9)


@dataclass(frozen=True)
class OtherGenConfig:
    depth: int = 2


@dataclass(frozen=True)
class DiscConfig:
    image_size: int = 64
    spectral: bool = False


@dataclass(frozen=True)
class DataConfig:
    path: str = ""
    image_size: int = 64


@dataclass(frozen=True)
class CropConfig:
    p: float = 0.5
    image_size: int = 0


@dataclass(frozen=True)
class WeightedConfig:
    weight: float = 1.0


def build(config=None):
    return config


def make_plugin(recipes: dict[str, Path]):
    class FakePlugin:
        @hookimpl
        def register_algorithms(self, register):
            register("fake-gan", FakeAlgorithm, FakeAlgoConfig)

        @hookimpl
        def register_generators(self, register):
            register("fake-gen", build, GenConfig)
            register("other-gen", build, OtherGenConfig)

        @hookimpl
        def register_discriminators(self, register):
            register("fake-disc", build, DiscConfig)

        @hookimpl
        def register_losses(self, register):
            register("plain", build)
            register("weighted", build, WeightedConfig)

        @hookimpl
        def register_augmentations(self, register):
            register("crop", build, CropConfig)
            register("flip", build)

        @hookimpl
        def register_datasets(self, register):
            register("fake-data", build, DataConfig)

        @hookimpl
        def register_recipes(self, register):
            for name, path in recipes.items():
                register(name, path)

    return FakePlugin()


BASE = """
description = "the base"
seed = 3

[algorithm]
name = "fake-gan"

[data]
name = "fake-data"
path = "somewhere"

[generator]
name = "fake-gen"
width = 16

[discriminator]
name = "fake-disc"

[loss]
name = "plain"

[augment.flip]
[augment.crop]
p = 0.2

[optim.generator]
lr = 1e-3

[train]
steps = 100
batch_size = 4
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def base(tmp_path) -> Path:
    return write(tmp_path / "base.toml", BASE)


@pytest.fixture
def registry(tmp_path, base):
    return isolated_plugins(("fake", make_plugin({"base": base})), ("optim", ganforge_optim), strict=True).registry


def child(tmp_path: Path, text: str, name: str = "child.toml", extends: str = "base") -> Path:
    return write(tmp_path / name, f'extends = "{extends}"\n{text}')


# --- inheritance ---------------------------------------------------------------------------------
def test_base_recipe_resolves(registry, base):
    recipe = load_recipe(str(base), registry)
    assert recipe.name == "base" and recipe.description == "the base" and recipe.seed == 3
    assert recipe.algorithm.name == "fake-gan" and recipe.algorithm.config == FakeAlgoConfig()
    assert recipe.parts["generator"].config == GenConfig(width=16)
    assert recipe.parts["loss"].config is None
    assert [a.name for a in recipe.augment] == ["flip", "crop"]
    assert recipe.optim["generator"].optimizer.name == "adam" and recipe.optim["generator"].optimizer.config == AdamConfig(lr=1e-3)
    assert recipe.optim["discriminator"].optimizer.config == AdamConfig()
    assert recipe.optim["discriminator"].schedule.name == "constant"
    assert (recipe.train.steps, recipe.train.batch_size) == (100, 4)


def test_extends_registered_name_child_overrides_parent(registry, tmp_path):
    path = child(tmp_path, '[generator]\nscale = 0.5\n[train]\nsteps = 7\n')
    recipe = load_recipe(str(path), registry)
    assert recipe.name == "child"
    assert recipe.parts["generator"].config == GenConfig(width=16, scale=0.5)  # merged with the parent's options
    assert recipe.train.steps == 7 and recipe.train.batch_size == 4
    assert recipe.description == "the base" and recipe.seed == 3


def test_recipe_by_registered_name(registry):
    recipe = load_recipe("base", registry)
    assert recipe.name == "base" and recipe.source == "base"


def test_extends_relative_path_is_relative_to_the_recipe(tmp_path, monkeypatch):
    write(tmp_path / "recipes" / "parent.toml", BASE)
    write(tmp_path / "elsewhere" / "parent.toml", BASE.replace("width = 16", "width = 99"))  # a decoy in the cwd
    path = child(tmp_path / "recipes" / "nested", "[train]\nsteps = 9\n", extends="../parent.toml")
    path2 = child(tmp_path / "recipes", "", name="sibling.toml", extends="parent.toml")
    registry = isolated_plugins(("fake", make_plugin({})), ("optim", ganforge_optim)).registry
    monkeypatch.chdir(tmp_path / "elsewhere")
    recipe = load_recipe(str(path), registry)
    assert recipe.train.steps == 9 and recipe.parts["generator"].config.width == 16
    assert load_recipe(str(path2), registry).parts["generator"].config.width == 16


def test_changed_component_name_drops_parent_options(registry, tmp_path):
    path = child(tmp_path, '[generator]\nname = "other-gen"\n')
    recipe = load_recipe(str(path), registry)
    assert recipe.parts["generator"].name == "other-gen"
    assert recipe.parts["generator"].config == OtherGenConfig()  # the parent's width did not follow


def test_shorthand_component_name(registry, tmp_path):
    path = child(tmp_path, 'generator = "other-gen"\nloss = "weighted"\n')
    recipe = load_recipe(str(path), registry)
    assert recipe.parts["generator"].config == OtherGenConfig()
    assert recipe.parts["loss"].config == WeightedConfig()
    grandchild = child(tmp_path, "[generator]\ndepth = 5\n", name="grandchild.toml", extends="child.toml")
    assert load_recipe(str(grandchild), registry).parts["generator"].config == OtherGenConfig(depth=5)


def test_augment_false_removes_an_inherited_augmentation(registry, tmp_path):
    path = child(tmp_path, "[augment]\nflip = false\n")
    recipe = load_recipe(str(path), registry)
    assert [a.name for a in recipe.augment] == ["crop"]
    assert "flip" not in recipe.raw["augment"]
    # And a later recipe (or --set) can bring it back.
    assert sorted(a.name for a in load_recipe(str(path), registry, ["augment.flip=true"]).augment) == ["crop", "flip"]


def test_inheritance_loop_is_reported(registry, tmp_path):
    a = write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(RecipeError, match=r"inheritance loops: .*a\.toml -> .*b\.toml -> .*a\.toml"):
        load_recipe(str(a), registry)
    selfish = write(tmp_path / "self.toml", 'extends = "./self.toml"\n')
    with pytest.raises(RecipeError, match="loops"):
        load_recipe(str(selfish), registry)


def test_missing_parent_names_the_child(registry, tmp_path):
    path = child(tmp_path, "", extends="bsae")
    with pytest.raises(RecipeError, match=r"unknown recipe 'bsae' \(extended by .*child\.toml\).*did you mean 'base'"):
        load_recipe(str(path), registry)
    path = child(tmp_path, "", extends="nope/missing.toml")
    with pytest.raises(RecipeError, match=r"recipe file not found: nope/missing\.toml \(extended by"):
        load_recipe(str(path), registry)


# --- overrides -----------------------------------------------------------------------------------
def test_set_overrides_of_every_type(registry, base):
    recipe = load_recipe(str(base), registry, [
        "train.steps=5",
        "optim.generator.lr=5e-4",
        "generator.norm=instance",  # a bare word is a string
        'generator.label="two words"',
        "generator.channels=[1, 2, 3]",
        "generator.betas=[0, 0.99]",
        "generator.bias=true",
        "augment.crop.p=0.9",  # nested key
        "discriminator.spectral=true",
    ])
    gen = recipe.parts["generator"].config
    assert recipe.train.steps == 5
    assert recipe.optim["generator"].lr == 5e-4
    assert gen.norm == "instance" and gen.label == "two words" and gen.bias is True
    assert gen.channels == (1, 2, 3) and gen.betas == (0.0, 0.99) and gen.width == 16
    assert recipe.augment[1].config.p == 0.9
    assert recipe.parts["discriminator"].config.spectral is True


def test_set_component_name_drops_recipe_options_but_keeps_other_sets(registry, base):
    recipe = load_recipe(str(base), registry, ["generator.depth=4", "generator.name=other-gen"])
    assert recipe.parts["generator"].config == OtherGenConfig(depth=4)


def test_parse_override():
    assert parse_override("train.steps=200") == (["train", "steps"], 200)
    assert parse_override(" loss.name = hinge ") == (["loss", "name"], "hinge")
    assert parse_override("augment.diffaug.policy=color,translation") == (["augment", "diffaug", "policy"], "color,translation")
    assert parse_override("x.y=[1, 2]") == (["x", "y"], [1, 2])
    assert parse_override("x.y=1.5") == (["x", "y"], 1.5)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("train.steps", "malformed override 'train.steps'"),
        ("train..steps=1", "malformed override key 'train..steps'"),
        ("=1", "malformed override key ''"),
        ("train.steps=[1,", "cannot parse the value of override 'train.steps=\\[1,'"),
        ("generator.label=two words", "cannot parse the value"),
    ],
)
def test_malformed_override(item, message):
    with pytest.raises(RecipeError, match=message):
        parse_override(item)


def test_override_into_a_value_is_an_error(registry, base):
    with pytest.raises(RecipeError, match="'train.steps' is not a section"):
        load_recipe(str(base), registry, ["train.steps.x=1"])
    with pytest.raises(RecipeError, match="'extends' cannot be overridden"):
        apply_overrides({}, {}, ["extends=base"])


def test_override_with_a_bad_value_names_the_override(registry, base):
    with pytest.raises(RecipeError, match=r"option 'train.steps' \(set in --set train.steps=many\) must be an integer"):
        load_recipe(str(base), registry, ["train.steps=many"])


# --- validation ----------------------------------------------------------------------------------
def test_unknown_key_suggests_and_names_the_file(registry, tmp_path):
    path = child(tmp_path, "[generator]\nwidht = 3\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path), registry)
    message = str(info.value)
    assert "unknown option 'generator.widht'" in message
    assert f"set in {path}" in message
    assert "did you mean 'width'" in message
    assert "accepts: image_size, width" in message


def test_unknown_key_in_the_parent_names_the_parent(registry, tmp_path, base):
    write(base, BASE.replace("[train]", "[train]\nstpes = 3"))
    path = child(tmp_path, "")
    with pytest.raises(RecipeError, match=r"unknown option 'train.stpes' \(set in base \(fake plugin\)\).*did you mean 'steps'"):
        load_recipe(str(path), registry)


def test_unknown_section_names_the_file(registry, tmp_path):
    path = child(tmp_path, "[trian]\nsteps = 3\n")
    with pytest.raises(RecipeError, match=rf"unknown section or key 'trian' in recipe {path}.*did you mean 'train'"):
        load_recipe(str(path), registry)
    path = child(tmp_path, "[genrator]\nname = 'fake-gen'\n")
    with pytest.raises(RecipeError, match="did you mean 'generator'"):
        load_recipe(str(path), registry)


def test_unknown_component_names_the_key_and_file(registry, tmp_path):
    path = child(tmp_path, '[loss]\nname = "wieghted"\n')
    with pytest.raises(UnknownComponentError, match=rf"unknown loss 'wieghted' \(did you mean 'weighted'\?\).*'loss.name', set in {path}"):
        load_recipe(str(path), registry)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[generator]\nwidth = "wide"\n', "option 'generator.width' (set in {path}) must be an integer, got 'wide'"),
        ("[generator]\nwidth = 3.5\n", "option 'generator.width' (set in {path}) must be an integer, got 3.5"),
        ("[generator]\nbias = 1\n", "option 'generator.bias' (set in {path}) must be true or false, got 1"),
        ('[generator]\nnorm = "group"\n', "option 'generator.norm' (set in {path}) must be one of 'batch', 'instance', 'none'"),
        ("[generator]\nbetas = [0.5]\n", "option 'generator.betas' (set in {path}) must be a list of 2 values, each a number"),
        ('[generator]\nchannels = ["a"]\n', "option 'generator.channels' (set in {path}) must be a list of values, each an integer"),
        ("[generator]\nlabel = 3\n", "option 'generator.label' (set in {path}) must be a string, got 3"),
        ('[train]\nmixed_precision = "fp8"\n', "option 'train.mixed_precision' (set in {path}) must be one of 'no', 'bf16', 'fp16', 'auto'"),
        ("seed = 1.5\n", "'seed' in recipe {path} must be an integer"),
        ("train = 3\n", "'train' in recipe {path} must be a table"),
        ("[optim]\ngenerator = 3\n", "'optim.generator' in recipe {path} must be a table"),
        ("[optim.critic]\nlr = 1.0\n", "unknown optimiser group 'optim.critic' in recipe {path}"),
        ("[loss]\nweight = 2.0\n", "loss 'plain' in [loss] takes no options, got: weight"),
        ("[generator]\nname = 3\n", "'generator.name' in recipe {path} must be a string"),
    ],
)
def test_wrong_values_name_key_file_and_expectation(registry, tmp_path, text, expected):
    path = child(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path), registry)
    assert expected.format(path=path) in str(info.value)


def test_malformed_toml_reports_line_and_column(registry, tmp_path):
    path = write(tmp_path / "broken.toml", '[train]\nsteps = 10\nbatch_size = = 4\n')
    with pytest.raises(RecipeError) as info:
        load_recipe(str(path), registry)
    message = str(info.value)
    assert f"malformed TOML in {path}" in message
    assert "line 3" in message and "column" in message


def test_missing_file(registry, tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(str(tmp_path / "nope.toml"), registry)
    with pytest.raises(RecipeError, match="unknown recipe 'bas'.*did you mean 'base'"):
        load_recipe("bas", registry)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.steps=-5", "train.steps must be a positive integer, got -5"),
        ("train.steps=0", "train.steps must be a positive integer, got 0"),
        ("train.batch_size=0", "train.batch_size must be a positive integer, got 0"),
        ("optim.generator.lr=0", "lr must be positive"),
        ("log.every=0", "log.every must be a positive integer"),
    ],
)
def test_invalid_training_values(registry, base, override, message):
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(str(base), registry, [override])
    assert "set in --set" in str(info.value)


def test_negative_steps_in_a_file_names_the_file(registry, tmp_path):
    path = child(tmp_path, "[train]\nsteps = -1\n")
    with pytest.raises(RecipeError, match=rf"train.steps must be a positive integer, got -1 \(set in .*{path.name}"):
        load_recipe(str(path), registry)


# --- image_size ----------------------------------------------------------------------------------
def test_image_size_is_propagated_from_data(registry, base):
    recipe = load_recipe(str(base), registry, ["data.image_size=32"])
    assert recipe.parts["generator"].config.image_size == 32
    assert recipe.parts["discriminator"].config.image_size == 32
    crop = next(a for a in recipe.augment if a.name == "crop")
    assert crop.config == CropConfig(p=0.2, image_size=32)
    assert recipe.raw["generator"]["image_size"] == 32


def test_explicit_image_size_wins(registry, base):
    recipe = load_recipe(str(base), registry, ["data.image_size=32", "discriminator.image_size=128"])
    assert recipe.parts["generator"].config.image_size == 32
    assert recipe.parts["discriminator"].config.image_size == 128


def test_propagated_image_size_errors_say_where_it_came_from(tmp_path):
    @dataclass(frozen=True)
    class PickyGenConfig:
        image_size: Literal[32, 64] = 64

    class Picky:
        @hookimpl
        def register_generators(self, register):
            register("picky", build, PickyGenConfig)

    registry = isolated_plugins(("fake", make_plugin({})), ("picky", Picky()), ("optim", ganforge_optim)).registry
    path = write(tmp_path / "r.toml", BASE.replace('"fake-gen"', '"picky"').replace("width = 16", "").replace(
        'path = "somewhere"', 'path = "somewhere"\nimage_size = 48'))
    with pytest.raises(RecipeError, match=rf"option 'generator.image_size' \(set in {path}, via data.image_size\) must be one of 32, 64"):
        load_recipe(str(path), registry)


# --- the written recipe --------------------------------------------------------------------------
def test_written_recipe_parses_back_to_the_same_recipe(registry, tmp_path):
    path = child(tmp_path, "[augment]\nflip = false\n")
    recipe = load_recipe(str(path), registry, ["generator.channels=[4, 8]", "data.image_size=32", "generator.norm=none"])
    text = recipe.to_toml()
    data = tomllib.loads(text)
    assert "extends" not in data
    assert data["generator"] == {
        "name": "fake-gen", "image_size": 32, "width": 16, "scale": 1.0, "norm": "none", "bias": False,
        "label": "gen", "channels": [4, 8], "betas": [0.5, 0.9],
    }
    assert data["train"]["steps"] == 100 and "lr_decay_start" in data["train"]  # defaults made explicit
    again = recipe_from_toml(text, registry)
    for attr in ("name", "description", "seed", "algorithm", "data", "parts", "augment", "optim", "train", "log", "raw"):
        assert getattr(again, attr) == getattr(recipe, attr), attr
    # Written again, it is the same text; written to a file, it loads as a recipe of its own.
    assert again.to_toml() == text
    written = write(tmp_path / "written.toml", text)
    assert load_recipe(str(written), registry).parts == recipe.parts


def test_resolve_does_not_mutate_its_input(registry, base):
    data = tomllib.loads(base.read_text())
    before = tomllib.loads(base.read_text())
    origins: dict[str, str] = {}
    resolve(data, registry, origins, "x")
    assert data == before and origins == {}
