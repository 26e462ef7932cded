"""Sharing the CPU between training runs: each run takes its fair share of the cores and adapts
while other runs start and end.

Why: PyTorch's OpenMP threads spin while they wait for each other. Two runs that both use every
core keep preempting each other's partners, and each falls to 5-20 % of its solo speed (measured on
2 cores: 167 img/s alone, 36 img/s each when two ran at once with 2 threads). With one thread each,
the same two runs kept 93 img/s each. A passive OpenMP wait policy also avoids the collapse, but it
cost a solo run a third of its speed, so ganforge splits the cores instead.

How: every training process registers a small JSON record in a shared folder and holds an
exclusive ``flock`` on it for its lifetime. A record whose lock can be taken belongs to a process
that is gone (killed, crashed) and is removed. A process that did not have its thread count set
(``train.threads`` or ``OMP_NUM_THREADS``) uses ``(cores - threads fixed by others) / adaptive
processes`` threads, at least one, and re-reads the folder every few seconds at a step boundary.
It also watches how busy the CPU is with work that is not registered (a test suite, another
program) and leaves those cores alone.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no sharing, every run keeps its threads
    fcntl = None

INTERVAL_S = 2.0  # how often a run re-reads the registry (at a step boundary)
MIN_WINDOW_S = 1.0  # the shortest time over which unregistered load is measured
BUSY_HIGH, BUSY_LOW = 0.6, 0.3  # unregistered load (in cores) that takes a core away / gives it back


def active_dir() -> Path:
    """The folder of records (``GANFORGE_ACTIVE_DIR``, else ``$TMPDIR/ganforge-active``), shared by the
    users of this machine."""
    env = os.environ.get("GANFORGE_ACTIVE_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "ganforge-active"


@dataclass
class Peer:
    pid: int
    run_dir: str
    group: str
    threads: int
    fixed: bool
    started: float

    def describe(self) -> str:
        when = time.strftime("%H:%M", time.localtime(self.started))
        return f"pid {self.pid}, {self.run_dir}, started {when}"


_serial = itertools.count()  # several runs can live in one process (notebooks, tests): one record each


def live_peers(folder: Path, own_name: str = "") -> list[Peer]:
    """The records of the other runs that are still running (stale records are removed)."""
    peers = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return peers
    for name in names:
        if not name.endswith(".json") or name == own_name:
            continue
        path = folder / name
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # its owner holds the lock: alive
                try:
                    record = json.loads(os.read(fd, 1 << 16).decode("utf-8"))
                    peers.append(Peer(int(record["pid"]), str(record["run_dir"]), str(record["group"]),
                                      int(record["threads"]), bool(record["fixed"]), float(record["started"])))
                except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                    pass  # being written right now: it is counted at the next look
                continue
            except OSError:
                continue
            try:  # nobody holds it: the process is gone
                path.unlink()
            except OSError:
                pass
        finally:
            os.close(fd)
    return peers


def fair_share(cores: int, peers: list[Peer], foreign_busy: int = 0) -> int:
    """Threads for an adaptive process: the cores not fixed by others (nor busy with unregistered
    work), split evenly between the adaptive processes; at least one."""
    fixed = sum(p.threads for p in peers if p.fixed)
    adaptive = 1 + sum(1 for p in peers if not p.fixed)
    free = cores - fixed - foreign_busy
    return max(1, free // adaptive)


def _cpu_busy_seconds() -> float | None:
    """CPU time the whole machine spent busy (all cores), from /proc/stat; None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _release(fd: int, path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
    try:
        os.close(fd)
    except OSError:
        pass


class CpuShare:
    """One training process's place in the registry. ``threads`` is what it should use now."""

    def __init__(self, run_dir: Path, group: str, cores: int, fixed_threads: int = 0, folder: Path | None = None):
        self.cores = max(1, cores)
        self.fixed = fixed_threads > 0
        self.threads = fixed_threads if self.fixed else self.cores
        self.run_dir, self.group = str(run_dir), group
        self.folder = folder or active_dir()
        self.pid = os.getpid()
        self.name = f"{self.pid}-{next(_serial)}.json"
        self.started = time.time()
        self._fd: int | None = None
        self._next = 0.0
        self._named: set[tuple[int, str]] = set()
        self._foreign = 0
        self._last_busy: tuple[float, float, float] | None = None

    # --- registry --------------------------------------------------------------------------------
    def start(self) -> str | None:
        """Register and choose the thread count; returns a note when other runs share the CPU."""
        if fcntl is None or os.environ.get("GANFORGE_CPU_SHARE", "").lower() in ("0", "off", "no", "false"):
            return None  # not POSIX, or switched off: keep every core (the benchmarks compare both)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                os.chmod(self.folder, 0o1777)  # every user of the machine can register (sticky: not delete)
            except OSError:
                pass
            path = self.folder / self.name
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
            # A run that is never closed (an exception, a TrainRun built by hand) must not hold a
            # share of the cores for the rest of the process: close with the object.
            self._finalizer = weakref.finalize(self, _release, fd, path)
        except OSError:
            self._fd = None  # an unwritable temp folder must never stop training
            return None
        note = self._update(first=True)
        self._sample_busy()
        return note

    def _write(self) -> None:
        if self._fd is None:
            return
        record = {"pid": self.pid, "host": socket.gethostname(), "run_dir": self.run_dir, "group": self.group,
                  "threads": self.threads, "fixed": self.fixed, "started": self.started}
        data = json.dumps(record).encode("utf-8")
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, data)

    def close(self) -> None:
        if self._fd is not None:
            self._finalizer()
            self._fd = None

    # --- adapting --------------------------------------------------------------------------------
    def poll(self, now: float | None = None) -> str | None:
        """At a step boundary: re-read the registry every INTERVAL_S seconds. Returns a note (and has
        changed ``threads``) when the share changed."""
        if self._fd is None:
            return None
        now = time.monotonic() if now is None else now
        if now < self._next:
            return None
        self._next = now + INTERVAL_S
        peers = live_peers(self.folder, self.name)  # one look serves both the load and the share
        self._measure_foreign(peers)
        return self._update(peers)

    def _update(self, peers: list[Peer] | None = None, first: bool = False) -> str | None:
        if peers is None:
            peers = live_peers(self.folder, self.name)
        others = [p for p in peers if p.group != self.group]
        before = self.threads
        if not self.fixed:
            self.threads = min(self.cores, fair_share(self.cores, peers, self._foreign))
        if first or self.threads != before:
            self._write()
        new = [p for p in others if (p.pid, p.run_dir) not in self._named]
        self._named = {(p.pid, p.run_dir) for p in others}
        if self.fixed:
            if new:
                return (f"another ganforge run shares this CPU ({new[0].describe()}); this run keeps its fixed "
                        f"{self.threads} thread(s) (train.threads / OMP_NUM_THREADS), so both may slow down")
            return None
        if self.threads == before and not first:
            return None
        if self.threads < self.cores:
            why = f"another ganforge run shares this CPU ({others[0].describe()})" if others else \
                "other programs keep part of this CPU busy"
            return (f"{why}: using {self.threads} of {self.cores} threads, back to {self.cores} when it is free "
                    "(set train.threads to fix the count)")
        if not first:
            return f"the CPU is free again: back to {self.threads} threads"
        return None

    # --- load that is not a ganforge run ----------------------------------------------------------
    def _sample_busy(self) -> None:
        busy = _cpu_busy_seconds()
        if busy is not None:
            t = os.times()
            self._last_busy = (time.monotonic(), busy, t.user + t.system)

    def _measure_foreign(self, peers: list[Peer]) -> None:
        """Cores kept busy by processes other than this one and the registered runs' fair shares,
        averaged since the last look, with hysteresis so noise does not flip the thread count."""
        if self._last_busy is None:
            return
        then, busy0, own0 = self._last_busy
        if time.monotonic() - then < MIN_WINDOW_S:  # too short to tell load from noise: look later
            return
        self._sample_busy()
        if self._last_busy is None:
            return
        now, busy1, own1 = self._last_busy
        elapsed = now - then
        others = max(0.0, (busy1 - busy0) - (own1 - own0)) / elapsed
        registered = sum(min(p.threads, self.cores) for p in peers)
        foreign = max(0.0, others - registered)
        # Outside a band around the current value, move to the nearest whole core (0.6 rounds up).
        if foreign >= self._foreign + BUSY_HIGH or foreign <= self._foreign - 1 + BUSY_LOW:
            self._foreign = min(self.cores - 1, int(foreign + 1 - BUSY_HIGH))
