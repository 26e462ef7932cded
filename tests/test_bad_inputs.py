"""Every way a user can get the input wrong ends in one clear `error:` line, never a traceback."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch

from _cli_helpers import CATS_TINY, DATA, SHAPES_TINY, metrics, ok, one_error_line, run_cli, tensors


def train(*args, recipe: str = "dcgan-shapes", steps: int | None = 2):
    tiny = SHAPES_TINY if recipe == "dcgan-shapes" else CATS_TINY
    return run_cli("train", "--recipe", recipe, *(["--steps", steps] if steps else []), *tiny, *args)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A small finished run whose checkpoint the corruption tests copy and damage."""
    path = tmp_path_factory.mktemp("good") / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 2, "-o", path, *SHAPES_TINY,
               "--set", "log.checkpoint_every=1", "--set", "log.gif=false", "--set", "log.plots=false"))
    return path


@pytest.fixture
def model_file(run) -> Path:
    return run / "checkpoints" / "step-00000002" / "model.safetensors"


def sample(checkpoint: Path, tmp_path: Path):
    return run_cli("sample", "--checkpoint", checkpoint, "--num", 4, "--output", tmp_path / "grid.png")


# --- recipes and overrides ----------------------------------------------------------------------
def test_unknown_recipe_suggests_the_close_one(tmp_path):
    out = one_error_line(train("-o", tmp_path / "r", recipe="dcgan-cat"))
    assert "dcgan-cat'" in out and "did you mean" in out and "'dcgan-cats'" in out
    assert not (tmp_path / "r").exists()


def test_unknown_component(tmp_path):
    out = one_error_line(train("-o", tmp_path / "r", "--set", "generator.name=dcgn"))
    assert "dcgn" in out and "'dcgan'" in out and "generator" in out


def test_unknown_option_suggests_the_right_one(tmp_path):
    out = one_error_line(train("-o", tmp_path / "r", "--set", "generator.widht=3"))
    assert "widht" in out and "width" in out


def test_wrong_type(tmp_path):
    out = one_error_line(train("-o", tmp_path / "r", "--set", 'train.steps="many"', steps=None))
    assert "train.steps" in out and "many" in out


@pytest.mark.parametrize("args", [["--steps", "0"], ["--set", "train.batch_size=-1"]], ids=["steps0", "batch-1"])
def test_non_positive_sizes(tmp_path, args):
    out = one_error_line(run_cli("train", "--recipe", "dcgan-shapes", "-o", tmp_path / "r", *SHAPES_TINY[:3], *args))
    key = "steps" if args[0] == "--steps" else "batch_size"
    assert key in out and "positive" in out
    assert not (tmp_path / "r").exists()


def test_malformed_toml_recipe_names_line_and_column(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('description = "oops"\n[train]\nsteps = = 3\n')
    out = one_error_line(run_cli("train", "--recipe", bad, "-o", tmp_path / "r"))
    assert "bad.toml" in out and "line 3" in out and "column" in out


# --- data ---------------------------------------------------------------------------------------------
def test_missing_data_folder(tmp_path):
    out = one_error_line(train("-o", tmp_path / "r", "--data", "/nonexistent/cats", recipe="dcgan-cats"))
    assert "/nonexistent/cats" in out and ("--data" in out or "GANFORGE_DATA" in out)


def test_missing_relative_data_folder_names_the_data_root(tmp_path):
    out = one_error_line(train("-o", tmp_path / "r", "--set", 'data.path="no-such-cats"', recipe="dcgan-cats"))
    assert "no-such-cats" in out and "GANFORGE_DATA" in out and str(DATA) in out


def test_empty_data_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = one_error_line(train("-o", tmp_path / "r", "--data", empty, recipe="dcgan-cats"))
    assert "no images" in out and str(empty) in out


def test_data_folder_with_only_corrupt_images(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / "b.jpg").write_bytes(b"")
    out = one_error_line(train("-o", tmp_path / "r", "--data", folder, recipe="dcgan-cats"))
    assert str(folder) in out and "could be read" in out and ("a.png" in out or "b.jpg" in out)


# --- checkpoints -------------------------------------------------------------------------------------
def test_sample_checkpoint_that_does_not_exist(tmp_path):
    out = one_error_line(sample(tmp_path / "nowhere" / "model.safetensors", tmp_path))
    assert "not found" in out and "nowhere" in out
    assert not (tmp_path / "grid.png").exists()


def test_truncated_model_file(tmp_path, model_file):
    cut = tmp_path / "model.safetensors"
    data = model_file.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = one_error_line(sample(cut, tmp_path))
    assert str(cut) in out and "damaged" in out


def test_header_lying_about_tensor_sizes(tmp_path, model_file):
    data = model_file.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = len(data) - 8 - n
    name = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
    entry = header[name]
    entry["shape"] = [entry["shape"][0] * 1000, *entry["shape"][1:]]
    start, end = entry["data_offsets"]
    entry["data_offsets"] = [start, start + (end - start) * 1000]
    assert entry["data_offsets"][1] > body
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    liar = tmp_path / "model.safetensors"
    liar.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    out = one_error_line(sample(liar, tmp_path))
    assert str(liar) in out and "damaged" in out


class _Exploit:
    """Unpickling this touches a marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_checkpoint_is_refused_unopened(tmp_path):
    marker = tmp_path / "unpickled"
    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps({"generator": _Exploit(marker)}))
    out = one_error_line(sample(pt, tmp_path))
    assert "safetensors" in out and str(pt) in out
    assert not marker.exists(), "the .pt file was unpickled"


def _rewrite(src: Path, dest: Path, *, networks=None, tensors_fn=None) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as fh:
        meta = dict(fh.metadata())
    ts = tensors(src)
    if networks is not None:
        meta["networks"] = json.dumps(networks(json.loads(meta["networks"])))
    if tensors_fn is not None:
        ts = tensors_fn(ts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file(ts, str(dest), metadata=meta)
    return dest


def test_checkpoint_naming_an_unknown_generator_names_its_plugin(tmp_path, model_file):
    def foreign(nets):
        nets["generator"].update(name="stylegan9", plugin="stylegan", distribution="ganforge-stylegan")
        return nets

    path = _rewrite(model_file, tmp_path / "ck" / "model.safetensors", networks=foreign)
    out = one_error_line(sample(path, tmp_path))
    assert "stylegan9" in out and "ganforge-stylegan" in out and "pip install ganforge-stylegan" in out


def test_checkpoint_with_wrong_tensor_shapes(tmp_path, model_file):
    def shrink(ts):
        key = next(k for k in ts if k.startswith("generator.") and ts[k].dim() == 4)
        ts[key] = torch.zeros(ts[key].shape[0], ts[key].shape[1] // 2, *ts[key].shape[2:])
        return ts

    path = _rewrite(model_file, tmp_path / "ck" / "model.safetensors", tensors_fn=shrink)
    out = one_error_line(sample(path, tmp_path))
    assert "shape mismatch" in out and "generator" in out


# --- output and training -----------------------------------------------------------------------------
def test_unwritable_output_dir_fails_before_training(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere: use a path under a regular file instead
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        target = blocker / "run"
    else:
        parent = tmp_path / "locked"
        parent.mkdir()
        parent.chmod(0o500)
        target = parent / "run"
    try:
        result = train("-o", target)
    finally:
        if os.geteuid() != 0:
            (tmp_path / "locked").chmod(0o700)
    out = one_error_line(result)
    assert "output directory" in out and str(target) in out
    assert "ganforge dcgan-shapes:" not in out, "training started before the directory was checked"


@pytest.fixture
def stopped_run(tmp_path) -> Path:
    """A run stopped after step 1 with a checkpoint, to be resumed with learning rates that blow up."""
    path = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 4, "-o", path, *SHAPES_TINY,
               "--set", "log.checkpoint_every=1", "--stop-at", 1))
    return path


HUGE_LR = ["--set", "optim.generator.lr=1e30", "--set", "optim.discriminator.lr=1e30"]


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(stopped_run, tmp_path):
    out = one_error_line(run_cli("train", "--resume", stopped_run, "--no-progress", *HUGE_LR))
    assert "step 2" in out and "nan" in out and ("g_loss" in out or "d_loss" in out)
    assert "step 1" in out  # the kept checkpoint
    assert (stopped_run / "checkpoints" / "latest").read_text().strip() == "step-00000001"
    ok(sample(stopped_run, tmp_path))
    assert [r["step"] for r in metrics(stopped_run)] == [1]


def test_non_finite_loss_without_any_checkpoint(tmp_path):
    out = one_error_line(train("-o", tmp_path / "r", *HUGE_LR))
    assert "step 1" in out and "no checkpoint" in out


def test_non_finite_loss_rolls_back_and_continues(stopped_run, tmp_path):
    result = run_cli("train", "--resume", stopped_run, "--no-progress", *HUGE_LR,
                     "--set", 'train.on_nan="rollback"', "--set", "train.rollback_lr_factor=1e-33")
    ok(result)
    assert "rolled back to step 1" in result.output
    assert [r["step"] for r in metrics(stopped_run)] == [1, 2, 3, 4]
    assert (stopped_run / "checkpoints" / "latest").read_text().strip() == "step-00000004"


def test_rollback_gives_up_after_repeated_divergence(stopped_run):
    # halving 1e30 never gets anywhere: a bounded number of rollbacks, then a clear error (not an endless loop)
    result = run_cli("train", "--resume", stopped_run, "--no-progress", *HUGE_LR, "--set", 'train.on_nan="rollback"')
    out = one_error_line(result)
    assert out.count("rolled back") == 5 and "diverged" in out


def test_rollback_to_an_older_checkpoint_logs_each_step_once(tmp_path):
    # checkpoints every 2 steps; a generator lr of 1e30 leaves step 3 finite but wrecks G, so step 4 diverges
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 6, "-o", run, *SHAPES_TINY,
               "--set", "log.checkpoint_every=2", "--stop-at", 2))
    result = run_cli("train", "--resume", run, "--no-progress", "--set", "optim.generator.lr=1e30",
                     "--set", 'train.on_nan="rollback"', "--set", "train.rollback_lr_factor=1e-33")
    ok(result)
    assert "at step 4: rolled back to step 2" in result.output
    assert [r["step"] for r in metrics(run)] == [1, 2, 3, 4, 5, 6]


# --- a full disk --------------------------------------------------------------------------------
def test_nearly_full_disk_is_reported_before_training(tmp_path, monkeypatch):
    import collections
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**20, 10 * 2**20 - 2**20, 2**20))
    out = one_error_line(train("-o", tmp_path / "run"))
    assert "MiB free" in out and str(tmp_path / "run") in out
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_disk_full_while_saving_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import errno

    import ganforge.io.checkpoint as checkpoint

    real_save, calls = checkpoint.save_file, []

    def save_until_full(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) > 2:  # the first checkpoint (model + state) fits; the second does not
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", save_until_full)
    run = tmp_path / "run"
    out = one_error_line(train("-o", run, "--set", "log.checkpoint_every=1", steps=3))
    assert "disk is full" in out
    monkeypatch.setattr(checkpoint, "save_file", real_save)
    latest = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    assert latest.name == "step-00000001"
    ok(sample(run, tmp_path))
    # and the run continues from it once there is space again
    ok(run_cli("train", "--resume", run, "--no-progress"))
    assert (run / "checkpoints" / "step-00000003" / "model.safetensors").is_file()


@pytest.mark.parametrize("value", ["0", "-0.5", "1.5"])
def test_truncation_outside_zero_one_is_one_line_naming_the_option(run, tmp_path, value):
    out = one_error_line(run_cli("sample", "--checkpoint", run, "--num", 4, "--output", tmp_path / "grid.png",
                                 "--truncation", value))
    assert "--truncation" in out and "(0, 1]" in out
    assert not (tmp_path / "grid.png").exists()


def test_truncation_for_a_model_without_a_latent_average_says_so(run, tmp_path):
    out = one_error_line(run_cli("sample", "--checkpoint", run, "--num", 4, "--output", tmp_path / "grid.png",
                                 "--truncation", "0.7"))
    assert "truncat" in out and "stylegan2" in out
