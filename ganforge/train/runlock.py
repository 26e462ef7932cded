"""One owner per run folder: a lock that `ganforge train` (and `--resume`) hold while they write.

The lock is ``RUN/.ganforge.lock``: a kernel lock (``flock``) on the file plus a JSON owner record in
it (process id, host, start time, command). The kernel lock is the truth: the operating system drops
it the moment its process ends, however it ends (Ctrl-C, SIGTERM, ``kill -9``, a crash), so a lock
can never be left behind by a dead process on this machine, and a reused process id cannot keep a
folder locked. The record is for people: a refused run names the holder and says how to go on.

Two more layers cover what a local kernel lock cannot see:

- another machine on a shared filesystem whose locks do not reach this one: the holder touches the
  file every :data:`HEARTBEAT_S` seconds, and a record from another host that is fresher than
  :data:`STALE_AFTER_S` refuses the folder even when the kernel lock was granted; an older one is
  stale and is taken over with a notice;
- filesystems without ``flock`` (some network and FUSE mounts): the record alone decides, by
  whether its process is alive (same host) or how old its heartbeat is (other host).

In a multi-process run only the main process takes the lock; it then tells the others whether the
folder is theirs, so no process of a second run can start in a folder another run owns.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ganforge.core.errors import GanforgeError, TrainingError

LOCK_FILE = ".ganforge.lock"
HEARTBEAT_S = 30.0
"""How often the holder touches the lock file (its modification time is the heartbeat)."""
STALE_AFTER_S = 600.0
"""A record from another host whose heartbeat is older than this belongs to a process that is gone."""

try:
    import fcntl
except ImportError:  # Windows: the record alone decides
    fcntl = None

_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


class RunLocked(GanforgeError):
    """The run folder is in use by another ganforge process."""


@dataclass
class Holder:
    """Who holds (or held) a run folder, as its lock record says."""

    pid: int
    host: str
    since: float
    command: str = ""
    heartbeat: float = 0.0

    @classmethod
    def read(cls, text: str, heartbeat: float = 0.0) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), float(data["since"]), str(data.get("command", "")), heartbeat)
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"process {self.pid} on host {self.host} (since {when}, {_ago(time.time() - self.since)} ago)"

    def alive(self) -> bool:
        """Whether the process still runs (meaningful on its own host only)."""
        if os.name == "nt":  # os.kill(pid, 0) would end the process there; assume it runs
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process: it exists
            return True
        return True


def _host() -> str:
    return socket.gethostname()


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


class RunLock:
    """The lock of one run folder. ``acquire()`` takes it or raises :class:`RunLocked`; ``release()`` frees it."""

    def __init__(self, run_dir: Path, *, resume: bool = False, notice: Callable[[str], None] | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.resume = resume
        self.notice = notice or (lambda text: print(text, file=sys.stderr))
        self._fd: int | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # --- taking it ----------------------------------------------------------------------------
    def acquire(self) -> RunLock:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(
                f"cannot write to the output directory {self.run_dir}: {exc.strerror or exc}",
                hint="choose a writable place with --output-dir",
            ) from None
        for _ in range(20):  # a holder that releases between our open() and flock() removes the file: retry
            fd = self._open()
            kernel = self._flock(fd)
            if kernel is None:  # held by a running process
                holder = self._read(fd)
                os.close(fd)
                raise self._refusal(holder)
            if not self._same_file(fd):
                os.close(fd)
                continue
            try:
                previous = self._read(fd)
                self._check_record(previous, kernel)
                self._write(fd)
                if not kernel and not self._confirm(fd):  # no kernel lock: make sure no one else wrote after us
                    raise self._refusal(self._read(fd))
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            if previous is not None:
                self.notice(
                    f"note: took over the lock of {self.run_dir} from {previous.describe()}, which has ended "
                    "without releasing it"
                )
            self._beat = threading.Thread(target=self._heartbeat, name="ganforge-runlock", daemon=True)
            self._beat.start()
            return self
        raise TrainingError(f"could not lock {self.path}: it keeps being replaced by other processes")

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TrainingError(
                f"cannot write to the output directory {self.run_dir}: {exc.strerror or exc}",
                hint="choose a writable place with --output-dir",
            ) from None

    @staticmethod
    def _flock(fd: int) -> bool | None:
        """True: kernel lock taken; False: this filesystem has no locks; None: another process holds it."""
        if fcntl is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in _NO_LOCKS:
                return False
            raise

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _read(fd: int) -> Holder | None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 1 << 16).decode("utf-8", "replace")
            return Holder.read(text, heartbeat=os.fstat(fd).st_mtime)
        except OSError:
            return None

    def _check_record(self, previous: Holder | None, kernel: bool) -> None:
        """With the kernel lock granted, a record can still belong to a live owner the kernel cannot see."""
        if previous is None or (previous.host == _host() and previous.pid == os.getpid()):
            return
        if previous.host != _host():
            if time.time() - previous.heartbeat < STALE_AFTER_S:
                raise self._refusal(previous, other_host=True)
        elif not kernel and previous.alive():
            raise self._refusal(previous)

    def _write(self, fd: int) -> None:
        self._record = {
            "pid": os.getpid(), "host": _host(), "since": time.time(),
            "command": " ".join(["ganforge", *sys.argv[1:]])[:300],
            "resume": self.resume,
        }
        data = (json.dumps(self._record) + "\n").encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.fsync(fd)

    def _confirm(self, fd: int) -> bool:
        time.sleep(0.2)
        now = self._read(fd)
        return now is not None and now.pid == os.getpid() and now.host == _host()

    def _refusal(self, holder: Holder | None, other_host: bool = False) -> RunLocked:
        who = holder.describe() if holder is not None else "another process (starting up)"
        what = "resume" if self.resume else "train"
        hint = (
            f"wait until it ends (Ctrl-C or `kill {holder.pid}` stops it with a checkpoint), then continue with "
            f"`ganforge train --resume {self.run_dir}`"
            if holder is not None and not other_host else
            f"wait until it ends, then continue with `ganforge train --resume {self.run_dir}`"
        )
        if other_host:
            left = max(0.0, STALE_AFTER_S - (time.time() - holder.heartbeat))
            hint += (f"; if that process is gone, the lock counts as stale in {_ago(left)} "
                     f"(or delete {self.path})")
        if not self.resume:
            hint += ", or choose another --output-dir"
        return RunLocked(f"cannot {what} in {self.run_dir}: it is in use by ganforge {who}", hint=hint)

    # --- holding and releasing ----------------------------------------------------------------
    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self._fd)
            except (OSError, TypeError):
                return

    def release(self) -> None:
        if self._fd is None:
            return
        self._stop.set()
        fd, self._fd = self._fd, None
        try:
            # Remove while still locked: a process waiting on this file finds it replaced and retries.
            if self._same_file(fd):
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing drops the kernel lock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_holder(run_dir: Path) -> Holder | None:
    """The record of the process holding ``run_dir`` now, or ``None`` when no process holds it."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        holder = RunLock._read(fd)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None  # nobody holds it: a leftover record
            except BlockingIOError:
                return holder
            except OSError:
                pass
        return holder if holder is not None and (holder.host != _host() or holder.alive()) else None
    finally:
        os.close(fd)


# --- the trainer's two calls ---------------------------------------------------------------------
def acquire(run, *, resume: bool, notice: Callable[[str], None] | None = None) -> None:
    """Lock ``run.run_dir`` for a training run; in a multi-process run only the main process holds
    the lock and every process stops with the same error when the folder is taken."""
    run.lock = None
    error: tuple[str, str | None] | None = None
    if run.is_main:
        try:
            run.lock = RunLock(run.run_dir, resume=resume, notice=notice).acquire()
        except GanforgeError as exc:
            if run.world == 1:
                raise
            error = (exc.message, exc.hint)
    if run.world > 1:
        from accelerate.utils import broadcast_object_list

        error = broadcast_object_list([error])[0]
        if error is not None:
            raise RunLocked(*error)


def release(run) -> None:
    lock = getattr(run, "lock", None)
    if lock is not None:
        lock.release()
        run.lock = None
