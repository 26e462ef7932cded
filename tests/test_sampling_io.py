"""Sampling and translating any number of images in bounded memory; counts that cannot be written are refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _cli_helpers import CATS_TINY, CYCLE_TINY, DATA, SHAPES_TINY, image_size, ok, one_error_line, pixels, run_cli
from _cli_helpers import subprocess_env

from ganforge.io import samples as sampling_io
from ganforge.data.images import list_images

CATS = DATA / "grumpify-cats"
needs_cats = pytest.mark.skipif(not (CATS / "grumpy").is_dir(), reason=f"no cat images in {DATA}")


@pytest.fixture(scope="module")
def shapes_ckpt(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("shapes") / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", run, *SHAPES_TINY,
               "--set", "log.gif=false", "--set", "log.plots=false"))
    return run


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 10 samples of 32x32 (instead of 1024), so chunking shows with few images."""
    monkeypatch.setattr(sampling_io, "CHUNK_BYTES", 10 * 3 * 32 * 32 * 4)


# --- refused before any work ---------------------------------------------------------------------
def test_num_far_too_large_for_a_grid_is_refused_before_loading(shapes_ckpt, tmp_path):
    out = tmp_path / "x.png"
    t0 = time.monotonic()
    text = one_error_line(run_cli("sample", "--checkpoint", shapes_ckpt, "--num", 200000, "--output", out))
    assert time.monotonic() - t0 < 10
    assert "--num 200,000" in text and "at most 1,024" in text and "--individual" in text
    assert not out.exists()


@pytest.mark.parametrize(("args", "says"), [
    (["--num", 0], "--num must be a positive integer"),
    (["--num", 2_000_000, "--individual", "each"], "at most 1,000,000"),
    (["--seed", 2**70], "--seed must be between"),
    (["--output", "grid.gif"], "--output must be an image file name"),
])
def test_counts_and_names_out_of_range_are_refused(shapes_ckpt, tmp_path, args, says):
    args = [tmp_path / a if a == "each" else a for a in args]
    if "--output" not in args:
        args += ["--output", tmp_path / "g.png"]
    text = one_error_line(run_cli("sample", "--checkpoint", shapes_ckpt, *args))
    assert says in text
    assert not (tmp_path / "each").exists()


def test_individual_files_beyond_the_free_space_are_refused(shapes_ckpt, tmp_path, monkeypatch):
    import shutil as sh

    real = sh.disk_usage
    monkeypatch.setattr(sampling_io.shutil, "disk_usage", lambda p: real(p)._replace(free=10 * 2**20))
    text = one_error_line(run_cli("sample", "--checkpoint", shapes_ckpt, "--num", 5000, "--output", tmp_path / "g.png",
                                  "--individual", tmp_path / "each"))
    assert "only 10 MiB are free" in text
    assert not (tmp_path / "g.png").exists()


# --- chunked generation --------------------------------------------------------------------------
def test_chunks_write_every_file_and_the_grid_is_the_first_chunk(shapes_ckpt, tmp_path, small_chunks):
    grid, each = tmp_path / "grid.png", tmp_path / "each"
    result = run_cli("sample", "--checkpoint", shapes_ckpt, "--num", 25, "--seed", 3, "--output", grid,
                     "--individual", each)
    ok(result)
    assert "wrote 25 images" in result.output and "(10 images" in result.output
    files = sorted(each.glob("*.png"))
    assert [f.name for f in files] == [f"sample-{i:04d}.png" for i in range(25)]
    assert image_size(grid) == (4 * 34 + 2, 3 * 34 + 2)  # 10 images, 4 columns
    assert np.array_equal(pixels(grid)[2:34, 36:68], pixels(files[1]))  # the grid shows the first files
    # every chunk draws its own noise: no two files alike; the same seed gives the same files again
    arrays = [pixels(f) for f in files]
    assert len({a.tobytes() for a in arrays}) == 25
    again = tmp_path / "again"
    ok(run_cli("sample", "--checkpoint", shapes_ckpt, "--num", 25, "--seed", 3, "--output", tmp_path / "g2.png",
               "--individual", again))
    assert all(np.array_equal(a, pixels(again / f.name)) for a, f in zip(arrays, files))
    # and without --individual more than one chunk is refused, naming this checkpoint's limit
    text = one_error_line(run_cli("sample", "--checkpoint", shapes_ckpt, "--num", 25, "--output", tmp_path / "g3.png"))
    assert "at most 10 of 32x32" in text


def test_a_grid_that_fits_one_chunk_is_what_one_call_gives(shapes_ckpt, tmp_path):
    from ganforge.io.inference import load_for_inference
    from ganforge.core.plugins import get_plugins

    from ganforge.core.components import SampleRequest

    loaded = load_for_inference(shapes_ckpt, get_plugins().registry)
    images, nrow = loaded.algorithm.sample(loaded.nets, SampleRequest(num=16, seed=5))
    out = tmp_path / "g.png"
    ok(run_cli("sample", "--checkpoint", shapes_ckpt, "--num", 16, "--seed", 5, "--output", out))
    from ganforge.data.images import make_grid_image

    assert np.array_equal(pixels(out), np.asarray(make_grid_image(images, nrow=nrow)))


def _peak_rss_kib(*args) -> int:
    """Run `ganforge ARGS` in a fresh process and return its peak resident memory (KiB)."""
    code = ("import atexit, resource, runpy, sys\n"
            "atexit.register(lambda: print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
            f"sys.argv = ['ganforge', *{[str(a) for a in args]!r}]\n"
            "runpy.run_module('ganforge', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stderr.split("PEAK")[-1].split()[0])


@needs_cats
def test_many_samples_stream_within_the_memory_bound(tmp_path):
    """3,000 samples of 64x64 stay within 150 MiB of a 16-sample run (measured: +81 MB; the old code held them
    all: +537 MB)."""
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-cats", "--steps", 1, "-o", run, *CATS_TINY,
               "--set", "log.gif=false", "--set", "log.plots=false"))
    small = _peak_rss_kib("sample", "-c", run, "--num", 16, "-o", tmp_path / "a.png")
    big = _peak_rss_kib("sample", "-c", run, "--num", 3000, "-o", tmp_path / "b.png", "--individual", tmp_path / "each")
    assert len(list((tmp_path / "each").glob("*.png"))) == 3000
    assert image_size(tmp_path / "b.png") == (32 * 66 + 2, 32 * 66 + 2)  # the grid shows the first 1,024
    assert big - small < 150 * 1024, f"peak RSS {small} KiB for 16 samples, {big} KiB for 3000"


# --- image-to-image ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cycle_ckpt(tmp_path_factory) -> Path:
    if not (CATS / "grumpy").is_dir():
        pytest.skip(f"no cat images in {DATA}")
    run = tmp_path_factory.mktemp("cycle") / "run"
    ok(run_cli("train", "--recipe", "cyclegan-cats", "--steps", 1, "-o", run, *CYCLE_TINY,
               "--set", "log.gif=false", "--set", "log.plots=false"))
    return run


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """Seven real cat photos in two nested folders, plus a broken file."""
    folder = tmp_path / "photos"
    for i, src in enumerate(sorted((CATS / "russian_blue").glob("*.png"))[:7]):
        dest = folder / ("b" if i % 2 else "a") / f"cat{i}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
    (folder / "a" / "broken.png").write_bytes(b"not a png")
    return folder


def test_image_to_image_samples_stream_their_sources_in_chunks(cycle_ckpt, photo_folder, tmp_path, monkeypatch):
    # 6 images (64x64) per source: chunks of 2 sources
    monkeypatch.setattr(sampling_io, "CHUNK_BYTES", 2 * 6 * 3 * 64 * 64 * 4)
    each = tmp_path / "each"
    result = run_cli("sample", "-c", cycle_ckpt, "--input", photo_folder, "--num", 5, "--output", tmp_path / "g.png",
                     "--individual", each)
    ok(result)
    assert image_size(tmp_path / "g.png") == (6 * 66 + 2, 2 * 66 + 2)  # the first chunk: 2 rows
    assert len(list(each.glob("*.png"))) == 5 * 6  # five sources, six images each
    assert "broken.png" in result.stderr
    # the sources are taken in the order the folder lists them: the first is the first image file
    first = [p for p in list_images(photo_folder) if p.name != "broken.png"][0]
    from ganforge.data.images import read_image, to_tensor

    expect = to_tensor(read_image(first), 64).permute(1, 2, 0).numpy()
    assert np.array_equal(pixels(each / "sample-0000.png"), expect)


def test_folder_walk_matches_list_images_and_skips_the_output(photo_folder):
    (photo_folder / "a" / "out").mkdir()
    (photo_folder / "a" / "out" / "x.png").write_bytes(b"")
    walked = list(sampling_io.iter_image_files(photo_folder, exclude=photo_folder / "a" / "out"))
    assert walked == [p for p in list_images(photo_folder) if "out" not in p.parts]


def test_translate_into_a_folder_inside_its_input(cycle_ckpt, photo_folder):
    out = photo_folder / "translated"
    result = run_cli("translate", "-c", cycle_ckpt, "-i", photo_folder, "-o", out, "--no-progress")
    assert result.exit_code == 1  # the broken file is reported
    assert "translated 7 image(s)" in result.stdout
    result = run_cli("translate", "-c", cycle_ckpt, "-i", photo_folder, "-o", out, "--no-progress")
    assert "translated 7 image(s)" in result.stdout  # its own outputs are not translated again
    assert len(list(out.rglob("*.png"))) == 7
