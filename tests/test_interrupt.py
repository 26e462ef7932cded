"""Ctrl-C / SIGTERM during training save a checkpoint; half-written checkpoints are never loaded."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _cli_helpers import SHAPES_TINY, metrics, ok, one_error_line, run_cli, subprocess_env


def start_long_run(run: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ganforge", "train", "--recipe", "dcgan-shapes", "--steps", "100000", "-o", str(run),
           "--set", "log.checkpoint_every=100000", *SHAPES_TINY]
    with open(log, "w") as err:
        return subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=err)


def wait_for_training(proc: subprocess.Popen, run: Path, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (run / "metrics.jsonl").exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended early ({proc.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no metrics.jsonl after {timeout}s:\n{log.read_text()}")
        time.sleep(0.2)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, sig, code):
    run, log = tmp_path / "run", tmp_path / "stderr.txt"
    proc = start_long_run(run, log)
    try:
        wait_for_training(proc, run, log)
        proc.send_signal(sig)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert rc == code, err
    assert "Traceback" not in err
    assert "resume with" in err and str(run) in err
    latest = (run / "checkpoints" / "latest").read_text().strip()
    step = int(latest.split("-")[1])
    assert step >= 1 and (run / "checkpoints" / latest / "model.safetensors").is_file()
    assert max(r["step"] for r in metrics(run)) == step  # the checkpoint is at the last logged step

    out = tmp_path / "grid.png"
    result = run_cli("sample", "--checkpoint", run, "--num", 4, "--output", out)
    ok(result)
    assert f"checkpoint step {step}" in result.output and out.is_file()
    if sig == signal.SIGINT:  # and the run goes on from there
        result = run_cli("train", "--resume", run, "--stop-at", step + 1, "--no-progress")
        ok(result)
        assert f"at step {step}" in result.output
        assert [r["step"] for r in metrics(run)][-2:] == [step, step + 1]


@pytest.fixture
def small_run(tmp_path) -> Path:
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 2, "-o", run, *SHAPES_TINY,
               "--set", "log.checkpoint_every=1", "--set", "log.gif=false", "--set", "log.plots=false"))
    return run


def _half_written(run: Path, name: str) -> Path:
    """A checkpoint folder left by a process killed while writing it."""
    stale = run / "checkpoints" / name
    stale.mkdir()
    real = (run / "checkpoints" / "step-00000002" / "model.safetensors").read_bytes()
    (stale / "model.safetensors").write_bytes(real[: len(real) // 2])
    return stale


def test_stale_temporary_checkpoint_is_never_latest(small_run, tmp_path):
    stale = _half_written(small_run, f".step-{99:08d}.tmp-123")
    out = tmp_path / "grid.png"
    result = run_cli("sample", "--checkpoint", small_run, "--num", 4, "--output", out)
    ok(result)
    assert "checkpoint step 2" in result.output
    # resuming loads the real latest and the next checkpoint write clears the leftover
    result = run_cli("train", "--resume", small_run, "--no-progress", "--set", "train.steps=3")
    ok(result)
    assert "at step 2" in result.output
    assert not stale.exists()
    assert (small_run / "checkpoints" / "latest").read_text().strip() == "step-00000003"


def test_latest_pointing_to_a_missing_folder_falls_back_to_the_newest_checkpoint(small_run, tmp_path):
    (small_run / "checkpoints" / "latest").write_text("step-00000050\n")
    _half_written(small_run, f".step-{50:08d}.tmp-456")
    out = tmp_path / "grid.png"
    result = run_cli("sample", "--checkpoint", small_run, "--num", 4, "--output", out)
    ok(result)
    assert "checkpoint step 2" in result.output


def test_only_a_half_written_checkpoint_is_not_loaded(tmp_path, small_run):
    # a run whose only checkpoint folder is a leftover: a clear error, not a crash on the broken file
    run = tmp_path / "other"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copytree(small_run / "checkpoints" / "step-00000002", run / "checkpoints" / ".step-00000001.tmp-9")
    out = one_error_line(run_cli("sample", "--checkpoint", run, "--num", 4, "--output", tmp_path / "g.png"))
    assert "no checkpoint" in out and str(run) in out
