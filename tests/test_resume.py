"""Exact resume: N steps, stop, resume to 2N gives the same bits as 2N steps in one go."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _cli_helpers import (
    CYCLE_TINY, DATA, SHAPES_TINY, assert_same_tensors, metrics, ok, one_error_line, run_cli, run_module,
    tensors,
)

N = 3
TIMING = {"time", "images_per_s"}  # wall-clock fields: the only ones allowed to differ


def _safetensors_meta(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata())


def assert_resume_is_exact(recipe: str, args: list[str], tmp_path: Path, state_keys: tuple[str, ...],
                           fresh_process: bool = False) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    ok(run_cli("train", "--recipe", recipe, "--steps", 2 * N, "-o", straight, *args))
    ok(run_cli("train", "--recipe", recipe, "--steps", 2 * N, "-o", split, *args, "--stop-at", N))
    assert (split / "checkpoints" / "latest").read_text().strip() == f"step-{N:08d}"
    assert [r["step"] for r in metrics(split)] == list(range(1, N + 1))
    if fresh_process:  # as a user would: nothing of the first run is left in memory
        proc = run_module("train", "--resume", split, "--no-progress")
        assert proc.returncode == 0, proc.stderr
        said = proc.stderr
    else:
        result = run_cli("train", "--resume", split, "--no-progress")
        ok(result)
        said = result.output
    assert "resumed from" in said and f"at step {N}" in said

    end = f"step-{2 * N:08d}"
    for name in ("model.safetensors", "state.safetensors"):
        a, b = straight / "checkpoints" / end / name, split / "checkpoints" / end / name
        assert_same_tensors(a, b)
        meta_a, meta_b = _safetensors_meta(a), _safetensors_meta(b)
        assert meta_a == meta_b, {k for k in meta_a if meta_a.get(k) != meta_b.get(k)}
    keys = tensors(split / "checkpoints" / end / "state.safetensors")
    for prefix in state_keys:  # the algorithm's own state is in the checkpoint (and so was compared)
        assert any(k.startswith(prefix) for k in keys), (prefix, sorted(keys)[:20])

    # metrics: every step once, and the same numbers as the uninterrupted run
    rows_a, rows_b = metrics(straight), metrics(split)
    assert [r["step"] for r in rows_b] == list(range(1, 2 * N + 1))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b)


def test_dcgan_resume_is_bit_exact_with_ema_and_diffaug(tmp_path):
    args = [*SHAPES_TINY, "--set", "algorithm.ema=0.9", "--set", 'augment.diffaug.policy="color,translation,cutout"',
            "--set", "log.sample_every=2", "--set", "log.checkpoint_every=2"]
    assert_resume_is_exact("dcgan-shapes", args, tmp_path, state_keys=("algo.0.ema.", "optim.generator."),
                           fresh_process=True)
    model = tensors(tmp_path / "split" / "checkpoints" / f"step-{2 * N:08d}" / "model.safetensors")
    assert any(k.startswith("generator_ema.") for k in model)


@pytest.mark.skipif(not (DATA / "grumpify-cats" / "grumpy").is_dir(), reason=f"no cat images in {DATA}")
def test_cyclegan_resume_is_bit_exact_with_image_pool(tmp_path):
    # pool_size=2 with batch 2: the pool is full after one step, so later steps swap images at random
    args = [*CYCLE_TINY, "--set", "algorithm.pool_size=2", "--set", "log.sample_every=2", "--set", "log.gif=false",
            "--set", "log.plots=false"]
    assert_resume_is_exact("cyclegan-cats", args, tmp_path, state_keys=("algo.0.pool_a", "algo.0.pool_b"))


# --- what resume refuses ----------------------------------------------------------------------------
def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    out = one_error_line(run_cli("train", "--resume", tmp_path, "--no-progress"))
    assert str(tmp_path) in out and "not a ganforge run directory" in out


def test_resume_of_a_run_without_checkpoints(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # a run that was killed before its first checkpoint: its recipe is there, no checkpoint
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe

    recipe = load_recipe("dcgan-shapes", get_registry(), ["train.threads=1", "data.num_images=64"])
    (run / "recipe.toml").write_text(recipe.to_toml())
    out = one_error_line(run_cli("train", "--resume", run, "--no-progress"))
    assert "nothing to resume" in out and str(run) in out
    assert not (run / "checkpoints").exists() or not list((run / "checkpoints").iterdir())


def test_training_into_a_run_with_checkpoints_needs_resume(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 2, "-o", run, *SHAPES_TINY))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = run_cli("train", "--recipe", "dcgan-shapes", "--steps", 2, "-o", run, *SHAPES_TINY)
    out = one_error_line(result)
    assert "--resume" in out and str(run) in out
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before, "a refused run must not touch the existing one"


def test_resume_forgets_metric_lines_logged_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 4, "-o", run, *SHAPES_TINY, "--stop-at", 2))
    # as if killed after logging steps 3 and 4 but before their checkpoint (one line cut mid-write)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 3, "d_loss": 9.0, "g_loss": 9.0}) + "\n")
        fh.write('{"step": 4, "d_lo')
    ok(run_cli("train", "--resume", run, "--no-progress"))
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["d_loss"] != 9.0
