"""Few-step CPU training of the DCGAN recipes, and `ganforge sample` on what they leave behind."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from _cli_helpers import CATS_TINY, DATA, SHAPES_TINY, image_size, metrics, ok, pixels, run_cli, tensors

METRIC_KEYS = {"step", "time", "images_per_s", "d_loss", "g_loss", "lr_factor"}


def _sets(args: list[str]) -> list[str]:
    """The values of the --set options in an argument list."""
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]


def initial_generator(recipe: str, args: list[str], tmp: Path) -> dict[str, torch.Tensor]:
    """The generator weights a run starts from: the trainer's own build, before any step."""
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe
    from ganforge.train.session import TrainRun

    registry = get_registry()
    run = TrainRun(load_recipe(recipe, registry, _sets(args)), registry, tmp)
    run.build()
    return {k: v.detach().clone() for k, v in run.unwrap("generator").state_dict().items()}


def assert_run_files(run: Path, steps: int, grids: int) -> None:
    ckpt = run / "checkpoints"
    assert (ckpt / "latest").read_text().strip() == f"step-{steps:08d}"
    assert (ckpt / f"step-{steps:08d}" / "model.safetensors").stat().st_size > 0
    assert (ckpt / f"step-{steps:08d}" / "state.safetensors").stat().st_size > 0
    samples = sorted((run / "samples").glob("*.png"))
    assert len(samples) == grids and samples[-1].name == f"step-{steps:08d}.png"
    for png in samples:
        assert min(image_size(png)) > 0
    rows = metrics(run)
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    for row in rows:
        assert METRIC_KEYS <= set(row), row
        assert np.isfinite([row["d_loss"], row["g_loss"]]).all()
    recipe = tomllib.loads((run / "recipe.toml").read_text())
    assert recipe["train"]["steps"] == steps and recipe["algorithm"]["name"] == "gan"
    assert image_size(run / "losses.png")[0] > 100
    from PIL import Image

    with Image.open(run / "progress.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == grids


def assert_generator_changed(start: dict[str, torch.Tensor], model_file: Path) -> None:
    end = {k[len("generator."):]: v for k, v in tensors(model_file).items() if k.startswith("generator.")}
    assert sorted(end) == sorted(start)
    params = [k for k in start if start[k].is_floating_point() and "running" not in k]
    changed = [k for k in params if not torch.equal(start[k], end[k])]
    # Every weight of G gets a gradient: after a step none may be left as initialised.
    assert len(changed) == len(params), f"unchanged: {sorted(set(params) - set(changed))}"


# --- dcgan-shapes ---------------------------------------------------------------------------------
SHAPES_ARGS = [*SHAPES_TINY, "--set", "log.sample_every=2", "--set", "log.checkpoint_every=2"]


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("shapes") / "run"
    result = run_cli("train", "--recipe", "dcgan-shapes", "--steps", 4, "-o", run, *SHAPES_ARGS)
    ok(result)
    assert "done: step 4" in result.output
    return run


def test_shapes_train_writes_checkpoints_samples_metrics_and_plots(shapes_run):
    assert_run_files(shapes_run, steps=4, grids=2)
    # checkpoint_every=2: both checkpoints are there, each a complete pair of files
    assert sorted(p.name for p in (shapes_run / "checkpoints").glob("step-*")) == ["step-00000002", "step-00000004"]
    assert not list((shapes_run / "checkpoints").glob(".step-*")), "temporary checkpoint folders left behind"


def test_shapes_generator_weights_change(shapes_run, tmp_path):
    start = initial_generator("dcgan-shapes", SHAPES_ARGS + ["--set", "train.steps=4"], tmp_path / "probe")
    assert_generator_changed(start, shapes_run / "checkpoints" / "step-00000004" / "model.safetensors")
    # and training goes on changing them: step 2 and step 4 differ
    a = tensors(shapes_run / "checkpoints" / "step-00000002" / "model.safetensors")
    b = tensors(shapes_run / "checkpoints" / "step-00000004" / "model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_sample_grid_has_the_right_size(shapes_run, tmp_path):
    out = tmp_path / "grid.png"
    result = run_cli("sample", "--checkpoint", shapes_run, "--num", 16, "--seed", 0, "--output", out)
    ok(result)
    assert "checkpoint step 4" in result.output
    # 16 images of 32x32 in a 4x4 grid with 2-pixel padding
    assert image_size(out) == (4 * 34 + 2, 4 * 34 + 2)


def test_sample_individual_and_interpolate(shapes_run, tmp_path):
    grid, folder, gif = tmp_path / "grid.png", tmp_path / "each", tmp_path / "walk" / "x.gif"
    result = run_cli("sample", "--checkpoint", shapes_run, "--num", 16, "--seed", 0, "--output", grid,
                     "--individual", folder, "--interpolate", gif)
    ok(result)
    files = sorted(folder.glob("*.png"))
    assert len(files) == 16 and all(image_size(f) == (32, 32) for f in files)
    from PIL import Image

    with Image.open(gif) as img:
        assert img.format == "GIF" and img.n_frames > 1
    # the individual images are the grid's cells
    cell = pixels(grid)[2:34, 2:34]
    assert np.array_equal(cell, pixels(files[0]))


def test_sample_same_seed_same_pixels_other_seed_other_pixels(shapes_run, tmp_path):
    paths = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        paths[name] = tmp_path / f"{name}.png"
        ok(run_cli("sample", "--checkpoint", shapes_run, "--num", 16, "--seed", seed, "--output", paths[name]))
    assert np.array_equal(pixels(paths["a"]), pixels(paths["b"]))
    assert not np.array_equal(pixels(paths["a"]), pixels(paths["c"]))


def test_sample_checkpoint_accepts_file_step_folder_checkpoints_folder_and_run(shapes_run, tmp_path):
    step4 = shapes_run / "checkpoints" / "step-00000004"
    forms = {
        "file": step4 / "model.safetensors",
        "step": step4,
        "checkpoints": shapes_run / "checkpoints",
        "run": shapes_run,
    }
    grids = {}
    for name, path in forms.items():
        out = tmp_path / f"{name}.png"
        result = run_cli("sample", "--checkpoint", path, "--num", 4, "--output", out)
        ok(result)
        assert "checkpoint step 4" in result.output
        grids[name] = pixels(out)
    for name in forms:
        assert np.array_equal(grids[name], grids["file"]), name
    # an older checkpoint folder is taken as given, not replaced by the latest
    older = tmp_path / "older.png"
    result = run_cli("sample", "--checkpoint", shapes_run / "checkpoints" / "step-00000002", "--num", 4, "--output", older)
    ok(result)
    assert "checkpoint step 2" in result.output
    assert not np.array_equal(pixels(older), grids["file"])


# --- dcgan-cats and its variants ----------------------------------------------------------------
needs_cats = pytest.mark.skipif(not (DATA / "grumpify-cats" / "grumpy").is_dir(), reason=f"no cat images in {DATA}")

AUGMENTS = {
    "dcgan-cats": {"deluxe", "diffaug"},
    "dcgan-cats-basic": set(),
    "dcgan-cats-deluxe": {"deluxe"},
    "dcgan-cats-diffaug": {"diffaug"},
    "dcgan-cats-deluxe-diffaug": {"deluxe", "diffaug"},
}


@needs_cats
@pytest.mark.parametrize("recipe", list(AUGMENTS))
def test_cats_recipes_train(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(DATA))
    run = tmp_path / "run"
    result = run_cli("train", "--recipe", recipe, "--steps", 2, "-o", run, *CATS_TINY)
    ok(result)
    assert_run_files(run, steps=2, grids=1)
    written = tomllib.loads((run / "recipe.toml").read_text())
    assert set(written.get("augment", {})) == AUGMENTS[recipe]
    assert image_size(run / "samples" / "step-00000002.png") == (4 * 66 + 2, 4 * 66 + 2)  # 16 samples of 64x64
    start = initial_generator(recipe, CATS_TINY + ["--set", "train.steps=2"], tmp_path / "probe")
    assert_generator_changed(start, run / "checkpoints" / "step-00000002" / "model.safetensors")
