"""Few-step CPU training of CycleGAN, `ganforge translate` / `sample` on its checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _cli_helpers import CYCLE_TINY, DATA, image_size, metrics, ok, pixels, run_cli

CATS = DATA / "grumpify-cats"
pytestmark = pytest.mark.skipif(not (CATS / "grumpy").is_dir(), reason=f"no cat images in {DATA}")


def _real(domain: str, i: int) -> Path:
    return sorted((CATS / domain).glob("*.png"))[i]


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cycle") / "run"
    result = run_cli("train", "--recipe", "cyclegan-cats", "--steps", 2, "-o", run, *CYCLE_TINY,
                     "--set", "log.sample_every=1")
    ok(result)
    return run


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Three real images at different sizes and one corrupt file."""
    folder = tmp_path_factory.mktemp("inputs")
    for name, size, src in (("square.png", (64, 64), 0), ("wide.png", (80, 48), 1), ("big.jpg", (120, 90), 2)):
        with Image.open(_real("russian_blue", src)) as img:
            img.convert("RGB").resize(size, Image.BICUBIC).save(folder / name)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not an image" * 10)
    return folder


SIZES = {"square.png": (64, 64), "wide.png": (80, 48), "big.jpg": (120, 90)}


def test_cyclegan_train_writes_checkpoints_and_grids(cycle_run):
    ckpt = cycle_run / "checkpoints"
    assert (ckpt / "latest").read_text().strip() == "step-00000002"
    assert (ckpt / "step-00000002" / "model.safetensors").is_file()
    assert (ckpt / "step-00000002" / "state.safetensors").is_file()
    grids = sorted(p.name for p in (cycle_run / "samples").glob("*.png"))
    assert grids == ["step-00000001.png", "step-00000002.png"]
    # log.num_samples=12 -> 2 example rows of source | translation | reconstruction for A->B and B->A
    assert image_size(cycle_run / "samples" / "step-00000002.png") == (6 * 66 + 2, 2 * 66 + 2)
    rows = metrics(cycle_run)
    assert [r["step"] for r in rows] == [1, 2]
    assert {"d_loss", "g_adv", "cycle", "identity"} <= set(rows[0])
    assert (cycle_run / "losses.png").is_file() and (cycle_run / "progress.gif").is_file()


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_translate_keeps_names_and_sizes_and_reports_corrupt_file(cycle_run, inputs, tmp_path, direction):
    out = tmp_path / "out"
    result = run_cli("translate", "--checkpoint", cycle_run, "--input", inputs, "--output", out,
                     "--direction", direction, "--no-progress")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"translated 3 image(s) {direction}" in result.stdout
    assert "corrupt.png" in result.stderr and "skipped" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(SIZES)
    for name, size in SIZES.items():
        assert image_size(out / name) == size, name
        # a translation, not a copy of the input
        src = np.asarray(Image.open(inputs / name).convert("RGB"), dtype=np.int16)
        assert np.abs(pixels(out / name).astype(np.int16) - src).mean() > 1, name


def test_translate_directions_differ(cycle_run, inputs, tmp_path):
    single = tmp_path / "one"
    single.mkdir()
    shutil.copy(inputs / "square.png", single / "square.png")
    outs = {}
    for direction in ("a2b", "b2a"):
        outs[direction] = tmp_path / direction
        result = run_cli("translate", "-c", cycle_run / "checkpoints" / "step-00000002" / "model.safetensors",
                         "-i", single / "square.png", "-o", outs[direction], "-d", direction, "--no-progress")
        ok(result)
        assert "translated 1 image(s)" in result.output
    assert not np.array_equal(pixels(outs["a2b"] / "square.png"), pixels(outs["b2a"] / "square.png"))


def test_sample_on_cyclegan_checkpoint_writes_grid(cycle_run, inputs, tmp_path):
    out = tmp_path / "grid.png"
    result = run_cli("sample", "--checkpoint", cycle_run, "--num", 3, "--output", out)
    ok(result)
    # 3 rows (one per example) of 6 columns: a | a->b | a->b->a | b | b->a | b->a->b, 64x64 each
    assert image_size(out) == (6 * 66 + 2, 3 * 66 + 2)
    own = tmp_path / "own.png"
    ok(run_cli("sample", "--checkpoint", cycle_run, "--num", 1, "--input", inputs / "wide.png", "--output", own))
    assert image_size(own) == (6 * 66 + 2, 66 + 2)


def test_short_run_lowers_the_cycle_loss_on_a_fixed_batch(tmp_path):
    data = tmp_path / "pairs"
    for domain, src in (("a", "russian_blue"), ("b", "grumpy")):
        (data / domain).mkdir(parents=True)
        for i in range(2):
            shutil.copy(_real(src, i), data / domain / f"{i}.png")
    run = tmp_path / "run"
    result = run_cli(
        "train", "--recipe", "cyclegan-cats", "--steps", 30, "-o", run, *CYCLE_TINY,
        "--set", "data.name=unpaired-folders", "--set", f'data.path="{data}"',
        # one fixed batch: both images of each domain, no augmentation changing them
        "--set", "augment.deluxe=false", "--set", "augment.diffaug=false",
        "--set", "log.sample_every=1000", "--set", "log.gif=false", "--set", "log.plots=false",
    )
    ok(result)
    cycle = [r["cycle"] for r in metrics(run)]
    assert len(cycle) == 30
    assert cycle[-1] < 0.6 * cycle[0], cycle
