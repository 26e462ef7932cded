"""The "shapes-mlp" recipe: shipped as package data, resolvable, and trainable end to end."""

from __future__ import annotations

import tomllib
from importlib.resources import files


from ganforge.core.recipes import load_recipe
from ganforge.testing import use_plugins
from ganforge_extras import NoiseConfig, RelativisticConfig, TinyMLPConfig

RECIPE = files("ganforge_extras") / "recipes" / "shapes-mlp.toml"


def test_recipe_is_package_data_and_registered(registry):
    assert RECIPE.is_file()
    component = registry.get("recipe", "shapes-mlp")
    assert component.path == RECIPE
    assert tomllib.loads(RECIPE.read_text(encoding="utf-8")) == {
        "description": "A tiny MLP generator on the embedded shapes (ganforge-extras)",
        "extends": "dcgan-shapes",
        "generator": {"name": "tiny-mlp"},
        "loss": {"name": "relativistic"},
        "augment": {"noise": {"sigma": 0.05}},
    }


def test_recipe_resolves_on_top_of_dcgan_shapes(with_builtins):
    recipe = load_recipe("shapes-mlp", with_builtins.registry)
    assert recipe.description.endswith("(ganforge-extras)")
    assert recipe.algorithm.name == "gan"
    assert recipe.data.name == "shapes" and recipe.data.config.image_size == 32
    gen = recipe.parts["generator"]
    # A new generator name starts [generator] afresh (dcgan's width/noise_size do not leak in);
    # image_size comes from data.image_size.
    assert (gen.name, gen.config) == ("tiny-mlp", TinyMLPConfig(image_size=32, noise_size=64, hidden=256))
    assert recipe.parts["discriminator"].name == "dcgan"
    assert (recipe.parts["loss"].name, recipe.parts["loss"].config) == ("relativistic", RelativisticConfig())
    assert [(p.name, p.config) for p in recipe.augment] == [("noise", NoiseConfig(sigma=0.05))]


def test_recipe_trains_end_to_end(with_builtins, tmp_path):
    """A few real training steps of the recipe: every component works inside the "gan" algorithm."""
    from ganforge.train.loop import train

    overrides = [
        "train.steps=3", "train.batch_size=8", "train.threads=1", "data.num_images=32",
        "generator.hidden=32", "discriminator.width=8",
        "log.every=1", "log.sample_every=3", "log.checkpoint_every=3", "log.num_samples=4",
        "log.gif=false", "log.plots=false",
    ]
    with use_plugins(with_builtins):
        recipe = load_recipe("shapes-mlp", with_builtins.registry, overrides)
        run_dir = train(recipe, with_builtins.registry, tmp_path / "run", progress=False)
    assert (run_dir / "checkpoints").is_dir()
    assert any((run_dir / "checkpoints").iterdir())
