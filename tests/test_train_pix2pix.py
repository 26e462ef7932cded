"""pix2pix: the paired datasets (side by side, two folders, edges from photos), a few training
steps, translation from the checkpoint file alone, exact resume, and the errors a user sees."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _cli_helpers import DATA, QUIET, image_size, metrics, ok, one_error_line, pixels, run_cli, tensors
from test_resume import assert_resume_is_exact
from test_train_dcgan import assert_generator_changed, initial_generator

GRUMPY = DATA / "grumpify-cats" / "grumpy"
pytestmark = pytest.mark.skipif(not GRUMPY.is_dir(), reason=f"no cat images in {DATA}")

RECIPE = "pix2pix-edges2cats"
TINY = [*QUIET, "--set", "train.batch_size=2", "--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "log.every=1", "--set", "log.num_samples=6", "--set", "log.sample_every=3",
        "--set", "log.checkpoint_every=3"]


@pytest.fixture(scope="module")
def p2p_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("p2p") / "run"
    ok(run_cli("train", "--recipe", RECIPE, "--steps", 3, "-o", run, *TINY))
    return run


@pytest.fixture(scope="module")
def held_out_edges(tmp_path_factory) -> Path:
    """Edge maps of the photos the recipe holds out, written by the plugin's own script."""
    from ganforge_pix2pix.edges import main

    out = tmp_path_factory.mktemp("edges") / "held-out"
    assert main([str(GRUMPY), str(out), "--last", "8"]) == 0
    return out


# --- edges ------------------------------------------------------------------------------------------
def test_canny_finds_the_outline_of_a_square_one_pixel_thin():
    from ganforge_pix2pix.edges import edge_mask

    img = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    img[:, :, 8:24, 8:24] = 255
    mask = edge_mask(img)[0, 0]
    assert mask[16, 6:11].sum() >= 1 and mask[6:11, 16].sum() >= 1  # the left and top sides are found
    assert not mask[12:20, 12:20].any() and not mask[:4].any()  # nothing inside or far outside
    assert mask[16, :].sum() <= 4  # thin lines: non-maximum suppression, a pixel or two per side
    sobel = edge_mask(img, detector="sobel")[0, 0]
    assert sobel.sum() > mask.sum()  # the thresholded magnitude is thicker


def test_edges_dataset_pairs_edge_maps_with_photos_and_holds_out_the_last():
    from ganforge_pix2pix.data import EdgesConfig, build_edges

    ds = build_edges(EdgesConfig(path="grumpify-cats/grumpy", image_size=32, holdout=8))["pairs"]
    from ganforge.data.images import list_images

    every = [p.name for p in list_images(GRUMPY)]
    assert len(ds) == len(every) - 8 and ds.held_out == every[-8:] and not set(ds.held_out) & set(ds.names)
    assert ds.fields == {"image": "image", "target": "image"}
    items = ds.get_fields(torch.arange(2))
    edges = items["image"]
    assert set(edges.unique().tolist()) <= {-1.0, 1.0} and (edges == 1).float().mean() > 0.5  # black lines on white
    assert not torch.equal(items["target"], edges)


# --- the two paired layouts --------------------------------------------------------------------------
def _photos(n: int) -> list[Path]:
    return sorted(GRUMPY.glob("*.png"))[:n]


def test_side_by_side_splits_each_image_and_skips_non_pairs(tmp_path):
    from ganforge.data.folders import DataWarning
    from ganforge_pix2pix.data import SideBySideConfig, build_side_by_side

    folder = tmp_path / "ab"
    folder.mkdir()
    photos = _photos(3)
    for i, path in enumerate(photos):
        a = Image.open(path).convert("RGB")
        b = Image.new("RGB", a.size, (255, 0, 0))
        pair = Image.new("RGB", (a.width * 2, a.height))
        pair.paste(a, (0, 0))
        pair.paste(b, (a.width, 0))
        pair.save(folder / f"{i}.png")
    shutil.copy(photos[0], folder / "square.png")  # not an A|B pair
    with pytest.warns(DataWarning, match="1 image.*not twice as wide.*square.png"):
        ds = build_side_by_side(SideBySideConfig(path=str(folder), image_size=32))["pairs"]
    assert len(ds) == 3
    target = ds.get_fields(torch.arange(3))["target"]
    assert torch.allclose(target[:, 0], torch.ones_like(target[:, 0])) and (target[:, 1:] == -1).all()  # the red half
    with pytest.warns(DataWarning):
        flipped = build_side_by_side(SideBySideConfig(path=str(folder), image_size=32, input_side="right"))["pairs"]
    assert torch.equal(flipped.get_fields(torch.arange(3))["image"], target)


def _two_folders(root: Path, a_names: list[str], b_names: list[str]) -> None:
    photos = _photos(max(len(a_names), len(b_names)))
    for sub, names in (("a", a_names), ("b", b_names)):
        (root / sub).mkdir(parents=True)
        for name, photo in zip(names, photos):
            shutil.copy(photo, root / sub / name)


def test_paired_folders_match_names_ignoring_the_extension(tmp_path):
    from ganforge_pix2pix.data import PairedFoldersConfig, build_paired_folders

    _two_folders(tmp_path, ["x.png", "y.png"], ["y.jpg.png", "x.png"])
    (tmp_path / "b" / "y.jpg.png").rename(tmp_path / "b" / "y.jpg")
    ds = build_paired_folders(PairedFoldersConfig(path=str(tmp_path), image_size=32))["pairs"]
    assert ds.names == ["x.png", "y.png"] and len(ds) == 2


def test_paired_folders_report_how_many_and_which_names_are_unmatched(tmp_path):
    _two_folders(tmp_path, ["1.png", "2.png", "3.png", "4.png"], ["1.png", "2.png", "9.png"])
    out = one_error_line(run_cli("train", "--recipe", RECIPE, "--steps", 1, "-o", tmp_path / "run", *TINY,
                                 "--set", 'data.name="paired-folders"', "--set", f'data.path="{tmp_path}"'))
    flat = " ".join(out.split())
    assert "3 unmatched file name(s)" in flat
    assert "2 of 4 in 'a' have no partner in 'b': 3.png, 4.png" in flat
    assert "1 of 3 in 'b' have no partner in 'a': 9.png" in flat
    assert 'data.unmatched = "skip"' in flat
    # with unmatched = "skip" it trains on the two matched pairs
    ok(run_cli("train", "--recipe", RECIPE, "--steps", 1, "-o", tmp_path / "run2", *TINY,
               "--set", 'data.name="paired-folders"', "--set", f'data.path="{tmp_path}"', "--set", 'data.unmatched="skip"'))


# --- training and translation -------------------------------------------------------------------------
def test_pix2pix_trains(p2p_run, tmp_path):
    rows = metrics(p2p_run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite([r["d_loss"], r["g_adv"], r["l1"]]).all() for r in rows)
    start = initial_generator(RECIPE, TINY + ["--set", "train.steps=3"], tmp_path / "probe")
    assert_generator_changed(start, p2p_run / "checkpoints" / "step-00000003" / "model.safetensors")
    # progress grid: input | translation | target, two rows of 64x64
    assert image_size(p2p_run / "samples" / "step-00000003.png") == (3 * 66 + 2, 2 * 66 + 2)
    model = tensors(p2p_run / "checkpoints" / "step-00000003" / "model.safetensors")
    assert not any(k.startswith("discriminator.") for k in model)  # inference needs the generator only


def test_translate_held_out_edge_maps_from_the_file_alone(p2p_run, held_out_edges, tmp_path, monkeypatch):
    alone = tmp_path / "only"
    alone.mkdir()
    model = shutil.copy(p2p_run / "checkpoints" / "step-00000003" / "model.safetensors", alone / "model.safetensors")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cats"
    result = run_cli("translate", "--checkpoint", model, "--input", held_out_edges, "--output", out,
                     env={"GANFORGE_DATA": str(tmp_path / "no-data-here")})
    ok(result)
    assert "translated 8 image(s) edges2cats" in result.output
    names = sorted(p.name for p in held_out_edges.glob("*.png"))
    assert sorted(p.name for p in out.glob("*.png")) == names
    assert image_size(out / names[0]) == (64, 64)
    assert not np.array_equal(pixels(out / names[0]), pixels(held_out_edges / names[0]))
    # the direction is the recipe's name for it; another is refused, naming the right one
    bad = one_error_line(run_cli("translate", "--checkpoint", model, "--input", held_out_edges, "--output", out,
                                 "--direction", "a2b"))
    assert "this checkpoint translates: edges2cats" in bad


def test_sample_shows_input_and_translation(p2p_run, held_out_edges, tmp_path):
    grid = tmp_path / "grid.png"
    ok(run_cli("sample", "--checkpoint", p2p_run, "--input", held_out_edges, "--num", 4, "--output", grid))
    assert image_size(grid) == (2 * 66 + 2, 4 * 66 + 2)


def test_eval_translates_the_pairs_inputs_and_compares_with_their_targets(p2p_run, held_out_edges, tmp_path,
                                                                          monkeypatch):
    import json

    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "s.json"
    ok(run_cli("eval", p2p_run, "-n", 30, "-o", out, "--extractor", "pixels", "--no-progress"))
    data = json.loads(out.read_text())
    # the model's own direction by default; sources are the training pairs' edge maps, real = their photos
    assert data["direction"] == "edges2cats" and data["num_generated"] == 30
    assert data["num_real"] == len(list(GRUMPY.iterdir())) - 8 and "training data" in data["real_source"]
    assert "pixels/fd" in data["scores"] and 0 < data["scores"]["ssim"] <= 1
    # a user's own edge maps and photos
    ok(run_cli("eval", p2p_run, "-o", out, "--extractor", "pixels", "--no-progress", "--input", held_out_edges,
               "--real", GRUMPY))
    data = json.loads(out.read_text())
    assert data["num_generated"] == 8 and data["real_source"] == str(GRUMPY)
    bad = one_error_line(run_cli("eval", p2p_run, "--extractor", "pixels", "--direction", "a2b"))
    assert "--direction must be one of edges2cats" in bad


def test_a_discriminator_that_sees_only_the_output_is_refused(tmp_path):
    out = one_error_line(run_cli("train", "--recipe", RECIPE, "--steps", 1, "-o", tmp_path / "run", *TINY,
                                 "--set", "discriminator.in_channels=3"))
    assert "must see input and output together (in_channels = 6)" in out


def test_pix2pix_resume_is_bit_exact_with_dropout_and_flips(tmp_path):
    args = [*TINY, "--set", "log.sample_every=2", "--set", "log.checkpoint_every=2", "--set", "log.gif=false",
            "--set", "log.plots=false"]
    assert_resume_is_exact(RECIPE, args, tmp_path, state_keys=("optim.generator.", "optim.discriminator."))
