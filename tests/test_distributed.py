"""Two CPU processes through torch.distributed.run: one run, one set of files.

Required in CI (marker `distributed`, never skipped by default); every run here is a few steps.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _cli_helpers import DATA, image_size, metrics, ok, run_cli, subprocess_env, tensors

pytestmark = pytest.mark.distributed


def torchrun(run: Path, recipe: str, steps: int, *sets: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganforge", "train", "--recipe", recipe, "--steps", str(steps), "-o", str(run), "--no-progress",
           "--set", "log.every=1"]
    for item in sets:
        cmd += ["--set", item]
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def assert_one_set_of_files(run: Path, proc: subprocess.CompletedProcess, steps: int) -> None:
    said = proc.stdout + proc.stderr
    assert "world size 2" in said
    assert said.count("run directory:") == 1, "only the main process reports"
    assert "Traceback" not in said
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["latest", f"step-{steps:08d}"], ckpts  # no second set, no leftover temporary folders
    assert sorted(p.name for p in (run / f"checkpoints/step-{steps:08d}").iterdir()) == [
        "model.safetensors", "state.safetensors"]
    assert len(list(run.glob("recipe.toml"))) == 1
    assert not [p for p in run.rglob(".*")], "temporary files left behind"
    assert [r["step"] for r in metrics(run)] == list(range(1, steps + 1))  # each step logged once
    assert (run / "samples" / f"step-{steps:08d}.png").is_file()


def test_two_process_dcgan_shapes(tmp_path):
    run = tmp_path / "run"
    proc = torchrun(run, "dcgan-shapes", 4, "train.batch_size=4", "data.num_images=64", "log.num_samples=16")
    assert_one_set_of_files(run, proc, 4)
    assert "batch 4 per process" in proc.stderr
    # the checkpoint written by two processes is an ordinary one
    out = tmp_path / "grid.png"
    ok(run_cli("sample", "--checkpoint", run, "--num", 4, "--output", out))
    assert image_size(out) == (2 * 34 + 2, 2 * 34 + 2)


@pytest.mark.skipif(not (DATA / "grumpify-cats" / "grumpy").is_dir(), reason=f"no cat images in {DATA}")
def test_two_process_cyclegan_cats(tmp_path):
    run = tmp_path / "run"
    proc = torchrun(run, "cyclegan-cats", 2, "train.batch_size=2", "generator.width=8", "discriminator.width=8",
                    "log.num_samples=12", "log.gif=false", "log.plots=false")
    assert_one_set_of_files(run, proc, 2)
    # both processes' image pools are kept, so a resume can restore each
    keys = tensors(run / "checkpoints" / "step-00000002" / "state.safetensors")
    assert any(k.startswith("algo.0.pool_a") for k in keys) and any(k.startswith("algo.1.pool_a") for k in keys)
