"""Runs on one machine share its cores: a run takes its fair share, names the other run, and takes
the cores back when that run ends or is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganforge.train import cpushare
from ganforge.train.cpushare import CpuShare, Peer, fair_share, live_peers

pytestmark = pytest.mark.skipif(cpushare.fcntl is None, reason="needs POSIX flock")

PEER = """
import sys, time
from pathlib import Path
from ganforge.train.cpushare import CpuShare
share = CpuShare(Path(sys.argv[2]), group=sys.argv[2], cores=2, fixed_threads=int(sys.argv[3]), folder=Path(sys.argv[1]))
share.start()
print("registered", flush=True)
time.sleep(120)
"""


def peer(pid=1, threads=1, fixed=False, group="g"):
    return Peer(pid=pid, run_dir=f"runs/{pid}", group=group, threads=threads, fixed=fixed, started=0.0)


def test_fair_share_splits_the_free_cores_between_adaptive_runs():
    assert fair_share(2, []) == 2
    assert fair_share(2, [peer()]) == 1
    assert fair_share(8, [peer(1), peer(2), peer(3)]) == 2
    assert fair_share(8, [peer(1, threads=6, fixed=True)]) == 2  # a fixed run keeps its threads
    assert fair_share(2, [peer(1), peer(2)]) == 1  # never zero, even when oversubscribed
    assert fair_share(4, [], foreign_busy=1) == 3  # cores kept busy by unregistered work


@pytest.fixture
def spawn(tmp_path):
    procs = []

    def start(run_dir: str, fixed: int = 0) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", PEER, str(tmp_path / "active"), run_dir, str(fixed)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "registered"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_run_takes_half_of_two_cores_beside_another_and_names_it(tmp_path, spawn):
    other = spawn("runs/other-run")
    share = CpuShare(tmp_path / "mine", group="mine", cores=2, folder=tmp_path / "active")
    note = share.start()
    try:
        assert share.threads == 1
        assert f"pid {other.pid}" in note and "runs/other-run" in note and "1 of 2 threads" in note
        record = json.loads((tmp_path / "active" / share.name).read_text())
        assert record["threads"] == 1 and record["fixed"] is False and record["run_dir"] == str(tmp_path / "mine")
    finally:
        share.close()
    assert not (tmp_path / "active" / share.name).exists()


def test_a_killed_run_gives_its_cores_back_and_its_record_is_removed(tmp_path, spawn):
    other = spawn("runs/other-run")
    share = CpuShare(tmp_path / "mine", group="mine", cores=2, folder=tmp_path / "active")
    share.start()
    try:
        assert share.threads == 1
        assert share.poll(now=0.0) is None  # nothing changed
        other.send_signal(signal.SIGKILL)
        other.wait()
        note = share.poll(now=time.monotonic() + 10)
        assert share.threads == 2 and "back to 2 threads" in note
        assert not list((tmp_path / "active").glob(f"{other.pid}-*.json"))
    finally:
        share.close()


def test_a_run_started_later_is_seen_at_the_next_look(tmp_path, spawn):
    share = CpuShare(tmp_path / "mine", group="mine", cores=2, folder=tmp_path / "active")
    assert share.start() is None and share.threads == 2
    try:
        other = spawn("runs/late-run")
        note = share.poll(now=time.monotonic() + 10)
        assert share.threads == 1 and f"pid {other.pid}" in note
    finally:
        share.close()


def test_fixed_threads_are_kept_and_counted_by_the_others(tmp_path, spawn):
    spawn("runs/fixed-run", fixed=1)
    share = CpuShare(tmp_path / "mine", group="mine", cores=2, fixed_threads=2, folder=tmp_path / "active")
    note = share.start()
    try:
        assert share.threads == 2 and "keeps its fixed 2 thread(s)" in note
    finally:
        share.close()
    adaptive = CpuShare(tmp_path / "third", group="third", cores=2, folder=tmp_path / "active")
    adaptive.start()
    try:
        assert adaptive.threads == 1  # 2 cores - 1 fixed by the other run
    finally:
        adaptive.close()


def test_processes_of_one_run_split_the_cores_without_warning_about_each_other(tmp_path, spawn):
    spawn(str(tmp_path / "ddp"))  # rank 1 of the same run (same group)
    share = CpuShare(tmp_path / "ddp", group=str(tmp_path / "ddp"), cores=2, folder=tmp_path / "active")
    note = share.start()
    try:
        assert share.threads == 1 and "another ganforge run" not in (note or "")
    finally:
        share.close()


def test_runs_in_one_process_count_each_other_and_a_forgotten_one_is_released(tmp_path):
    import gc

    first = CpuShare(tmp_path / "a", group="a", cores=2, folder=tmp_path / "active")
    first.start()
    second = CpuShare(tmp_path / "b", group="b", cores=2, folder=tmp_path / "active")
    second.start()  # must not block on the first one's lock
    assert second.threads == 1
    del first  # never closed (e.g. a TrainRun built by hand): released with the object
    gc.collect()
    assert second.poll(now=time.monotonic() + 10) is not None and second.threads == 2
    second.close()
    assert not list((tmp_path / "active").iterdir())


def test_garbage_and_unwritable_registries_never_stop_a_run(tmp_path):
    folder = tmp_path / "active"
    folder.mkdir()
    (folder / "123.json").write_text("{not json")  # nobody holds its lock: a stale record
    assert live_peers(folder) == [] and not (folder / "123.json").exists()
    blocked = tmp_path / "file"
    blocked.write_text("")
    share = CpuShare(tmp_path / "mine", group="mine", cores=2, folder=blocked / "active")
    assert share.start() is None and share.threads == 2 and share.poll() is None


def test_training_beside_another_run_uses_its_share_and_says_so(tmp_path, spawn, monkeypatch):
    from _cli_helpers import CATS_TINY, ok, run_cli

    from ganforge.train.session import available_cores

    if available_cores() < 2:
        pytest.skip("needs 2 cores")
    monkeypatch.setenv("GANFORGE_ACTIVE_DIR", str(tmp_path / "active"))
    other = spawn("runs/other-run")
    result = run_cli("train", "--recipe", "dcgan-cats", "--steps", 2, "-o", tmp_path / "r", *CATS_TINY,
                     "--set", "log.gif=false", "--set", "train.threads=0", env={"OMP_NUM_THREADS": None})
    ok(result)
    assert f"pid {other.pid}" in result.output and f"using {available_cores() // 2} of {available_cores()} threads" in result.output
    assert [p.name.split("-")[0] for p in (tmp_path / "active").iterdir()] == [str(other.pid)]
