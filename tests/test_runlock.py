"""One owner per run folder: a second train or resume is refused, stale locks are taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _cli_helpers import SHAPES_TINY, metrics, ok, one_error_line, run_cli, run_module, subprocess_env
from test_interrupt import start_long_run, wait_for_training

from ganforge.train.runlock import LOCK_FILE, STALE_AFTER_S, RunLock, RunLocked, read_holder

SHORT = [*SHAPES_TINY, "--set", "log.gif=false", "--set", "log.plots=false"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _record(run: Path, *, pid: int, host: str, since: float, age: float = 0.0) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK_FILE
    path.write_text(json.dumps({"pid": pid, "host": host, "since": since, "command": "ganforge train"}))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_second_train_and_resume_on_a_running_run_are_refused_and_the_first_is_unharmed(tmp_path):
    """The issue's reproduction with real processes: two `train -o same`, and `--resume` of a live run."""
    run, log = tmp_path / "run", tmp_path / "first.txt"
    first = start_long_run(run, log)
    try:
        wait_for_training(first, run, log)
        holder = read_holder(run)
        assert holder is not None and holder.pid == first.pid
        t0 = time.monotonic()
        second = run_module("train", "--recipe", "dcgan-shapes", "--steps", 5, "-o", run, *SHAPES_TINY)
        resumed = run_module("train", "--resume", run, "--no-progress")
        took = time.monotonic() - t0
        first.send_signal(signal.SIGINT)
        rc = first.wait(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    for proc, verb in ((second, "train"), (resumed, "resume")):
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, proc.stderr
        assert f"cannot {verb} in {run}" in errors[0] and f"process {first.pid}" in errors[0] and "since" in errors[0]
        assert f"ganforge train --resume {run}" in proc.stderr  # how to go on later
    assert took < 60, f"refusals took {took:.0f}s"
    # the first run went on undisturbed, stopped cleanly with a checkpoint, and logged each step once
    err = log.read_text()
    assert rc == 130 and "Traceback" not in err, err
    steps = [r["step"] for r in metrics(run)]
    assert steps == list(range(1, len(steps) + 1)), steps
    latest = (run / "checkpoints" / "latest").read_text().strip()
    assert int(latest.split("-")[1]) == steps[-1]
    assert not (run / LOCK_FILE).exists(), "the lock is released when the run stops"


def test_killed_run_leaves_a_lock_that_resume_takes_over(tmp_path):
    run, log = tmp_path / "run", tmp_path / "first.txt"
    cmd = [sys.executable, "-m", "ganforge", "train", "--recipe", "dcgan-shapes", "--steps", "100000", "-o", str(run),
           "--set", "log.checkpoint_every=1", *SHORT]
    with open(log, "w") as fh:
        first = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=fh)
    try:
        wait_for_training(first, run, log)
        deadline = time.monotonic() + 60
        while not (run / "checkpoints" / "latest").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        first.kill()  # SIGKILL: no chance to clean up
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert (run / LOCK_FILE).exists()
    assert read_holder(run) is None  # nobody holds it any more
    step = int((run / "checkpoints" / "latest").read_text().split("-")[1])
    result = run_cli("train", "--resume", run, "--no-progress", "--stop-at", step + 1)
    ok(result)
    notice = [line for line in result.output.splitlines() if "took over the lock" in line]
    assert len(notice) == 1 and f"process {first.pid}" in notice[0], result.output
    assert not (run / LOCK_FILE).exists()


def test_train_and_resume_refused_while_another_process_holds_the_folder(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", run, *SHORT))
    assert not (run / LOCK_FILE).exists()
    with RunLock(run):
        out = one_error_line(run_cli("train", "--resume", run, "--no-progress", "--set", "train.steps=2"))
        assert f"in use by ganforge process {os.getpid()}" in out and "--resume" in out
        out = one_error_line(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", run, *SHORT))
        assert f"cannot train in {run}" in out and "another --output-dir" in out
    assert [r["step"] for r in metrics(run)] == [1]  # nothing was written by the refused runs
    ok(run_cli("train", "--resume", run, "--no-progress", "--set", "train.steps=2"))


def test_lock_released_when_the_run_fails(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", run, *SHORT))
    # an error after the lock was taken (a second run into a folder with checkpoints) still releases it
    one_error_line(run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", run, *SHORT))
    assert not (run / LOCK_FILE).exists()
    with RunLock(run):  # and it can be taken at once
        pass


def test_sigterm_releases_the_lock(tmp_path):
    run, log = tmp_path / "run", tmp_path / "err.txt"
    proc = start_long_run(run, log)
    try:
        wait_for_training(proc, run, log)
        assert (run / LOCK_FILE).exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (run / LOCK_FILE).exists()


# --- the lock itself -----------------------------------------------------------------------------
def test_stale_record_of_a_dead_process_is_taken_over_with_a_notice(tmp_path):
    pid = _dead_pid()
    _record(tmp_path, pid=pid, host=__import__("socket").gethostname(), since=time.time() - 3600)
    notices = []
    lock = RunLock(tmp_path, notice=notices.append).acquire()
    try:
        assert len(notices) == 1 and f"process {pid}" in notices[0] and "took over" in notices[0]
        holder = read_holder(tmp_path)
        assert holder.pid == os.getpid()
    finally:
        lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_other_host_fresh_record_refuses_and_old_one_is_taken_over(tmp_path):
    _record(tmp_path, pid=4242, host="gpu-node-7", since=time.time() - 60, age=5)
    with pytest.raises(RunLocked) as info:
        RunLock(tmp_path, resume=True).acquire()
    assert "process 4242 on host gpu-node-7" in info.value.message
    assert "stale in" in info.value.hint and "--resume" in info.value.hint
    _record(tmp_path, pid=4242, host="gpu-node-7", since=time.time() - 7200, age=STALE_AFTER_S + 60)
    notices = []
    lock = RunLock(tmp_path, notice=notices.append).acquire()
    lock.release()
    assert len(notices) == 1 and "gpu-node-7" in notices[0]


def test_held_lock_names_its_holder_and_a_second_acquire_fails_fast(tmp_path):
    with RunLock(tmp_path):
        t0 = time.monotonic()
        with pytest.raises(RunLocked) as info:
            RunLock(tmp_path).acquire()
        assert time.monotonic() - t0 < 1
        assert f"process {os.getpid()}" in info.value.message
    with RunLock(tmp_path):  # released: free again
        pass


def test_unwritable_folder_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    tmp_path.chmod(0o500)
    try:
        from ganforge.core.errors import TrainingError

        with pytest.raises(TrainingError, match="cannot write to the output directory"):
            RunLock(tmp_path / "run").acquire()
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.distributed
def test_two_process_run_refused_in_a_locked_folder(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganforge", "train", "--recipe", "dcgan-shapes", "--steps", "2", "-o", str(run), *SHORT]
    with RunLock(run):
        proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0, said
    assert f"in use by ganforge process {os.getpid()}" in said
    assert not (run / "metrics.jsonl").exists() and not (run / "recipe.toml").exists()
