"""``ganforge data fetch``: download a dataset archive into the cache, check it, extract it atomically.

The steps, each of which leaves nothing half-made that a run could pick up:

1. **Download** to ``CACHE/downloads/NAME.EXT.part`` with a progress bar. An interrupted download
   keeps its ``.part`` file and the next fetch resumes it with an HTTP ``Range`` request (a server
   that ignores ``Range`` sends the whole file again). Only a complete file is renamed to
   ``NAME.EXT``. ``--from FILE`` uses an archive downloaded by hand instead.
2. **Check** the archive: its SHA-256 where one is known and the MD5 its publisher gives where it
   gives one (some publish no SHA-256), its integrity (every zip member's CRC, or the whole gzip stream and tar
   structure), no member outside the archive's folder, and its layout (e.g. ``trainA/`` and
   ``trainB/`` with images, or the data files a set is shipped as: ``DataSource.files``).
3. **Extract** into a temporary folder inside the cache, run the source's own check of its files
   (``DataSource.verify``, e.g. whole records), write ``.ganforge-source.json`` there and rename
   the dataset folder into place in one step. Runs only ever see a complete folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ganforge.data.sources import MANIFEST, DataSource, cache_dir, complete, datasets_dir, describe_contents, human_size
from ganforge.core.errors import DataError
from ganforge.data.images import IMAGE_SUFFIXES

CHUNK = 1 << 16
TIMEOUT_S = 30.0
USER_AGENT = "ganforge-data-fetch"


class FetchError(DataError):
    """A download, archive check or extraction failed; nothing was installed."""


class DamagedArchive(FetchError):
    """The archive's files failed the source's own check (``DataSource.verify``): the archive is bad."""


@dataclass(frozen=True)
class FetchResult:
    path: Path
    already: bool = False
    sha256: str | None = None
    archive_bytes: int | None = None
    md5: str | None = None
    """The archive's MD5, when the source publishes one (it was checked)."""


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def archive_suffix(source: DataSource) -> str:
    return ".zip" if source.archive == "zip" else ".tar.gz"


# --- download ------------------------------------------------------------------------------------
def download(url: str, dest: Path, *, console=None, progress: bool = True, label: str = "") -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if present. Returns ``dest``."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 - http(s) URLs only
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part file is already complete
            part.replace(dest)
            return dest
        raise FetchError(f"cannot download {url}: the server answered HTTP {exc.code} {exc.reason}",
                         hint=_hint_for(label, url)) from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"cannot download {url}: {reason} (offline?)", hint=_hint_for(label, url)) from None

    with response:
        status = getattr(response, "status", 200)
        if status == 206:
            start = have
            sent = response.headers.get("Content-Range", "")
            if not sent.replace(" ", "").startswith(f"bytes{have}-"):  # not the part we asked for
                raise FetchError(f"the server answered a resumed download of {url} with the range '{sent}'",
                                 hint=f"delete {part} and run the fetch again") from None
        else:  # 200: the server ignored Range (or there was nothing to resume): start over
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        mode = "ab" if start else "wb"
        done = start
        bar = _bar(console, progress, label or dest.name, total, done)
        try:
            with open(part, mode) as fh:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except Exception as exc:  # noqa: BLE001 - IncompleteRead, connection reset, timeout
                        raise _interrupted(url, done, total, label, exc) from None
                    if not chunk:
                        break
                    fh.write(chunk)
                    done += len(chunk)
                    if bar is not None:
                        bar[0].update(bar[1], completed=done)
        finally:
            if bar is not None:
                bar[0].stop()
        if total is not None and done < total:
            raise _interrupted(url, done, total, label, "the connection closed early")
    part.replace(dest)
    return dest


def _hint_for(label: str, url: str) -> str:
    name = label or "NAME"
    return f"download {url} by hand and run `ganforge data fetch {name} --from FILE`"


def _interrupted(url: str, done: int, total: int | None, label: str, exc) -> FetchError:
    of = f" of {human_size(total)}" if total else ""
    name = label or "NAME"
    return FetchError(
        f"the download of {url} stopped after {human_size(done)}{of} ({exc}); the partial file is kept",
        hint=f"run `ganforge data fetch {name}` again to resume, or download by hand and use --from FILE",
    )


def _bar(console, progress: bool, label: str, total: int | None, done: int):
    if not progress or console is None or not console.is_terminal:
        return None
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    bar = Progress(TextColumn(f"[bold]fetch[/bold] {label}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), console=console, transient=True)
    bar.start()
    task = bar.add_task("fetch", total=total, completed=done)
    return bar, task


# --- checks --------------------------------------------------------------------------------------
def _members(archive: Path, kind: str) -> tuple[list[str], int]:
    """Every file member's name and their total size, after reading every byte (CRC / gzip checks)."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise FetchError(f"{archive} is corrupt: the CRC of {bad} does not match")
                files = [i for i in zf.infolist() if not i.is_dir()]
                return [i.filename for i in files], sum(i.file_size for i in files)
        names, total = [], 0
        with tarfile.open(archive, "r:gz") as tf:
            for member in tf:
                if member.isfile():
                    f = tf.extractfile(member)
                    while f is not None and f.read(1 << 20):
                        pass
                    names.append(member.name)
                    total += member.size
                elif not member.isdir():
                    raise FetchError(f"{archive} holds {member.name}, which is not a plain file or folder")
        return names, total
    except FetchError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise FetchError(f"{archive} is not a complete {kind} archive ({_one_line(exc)})",
                         hint="it may be a truncated download: fetch it again, or download it once more by hand") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def digests(path: Path, md5: bool = False) -> tuple[str, str | None]:
    """``(sha256, md5 or None)`` of a file's bytes, read once in 1 MiB blocks."""
    sha = hashlib.sha256()
    other = hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
            if other is not None:
                other.update(block)
    return sha.hexdigest(), other.hexdigest() if other is not None else None


def check_archive(archive: Path, source: DataSource, sha256: str | None = None) -> tuple[str, str, int]:
    """Check an archive; returns ``(its sha256, the folder inside it that holds the layout, the bytes
    its files take once extracted)``. A SHA-256 (``sha256``, else the source's) and the source's
    published MD5 are each checked where known."""
    if source.archive not in ("zip", "tar.gz"):
        raise FetchError(f"{source.name} is not downloaded as an archive (it is {source.kind})")
    expected_md5 = (source.md5 or "").strip().lower()
    digest, md5 = digests(archive, md5=bool(expected_md5))
    expected = (sha256 or source.sha256 or "").strip().lower()
    if expected and digest != expected:
        raise FetchError(f"{archive} has SHA-256 {digest}, expected {expected}",
                         hint="the file is damaged or not the right archive: download it again")
    if expected_md5 and md5 != expected_md5:
        raise FetchError(f"{archive} has MD5 {md5}, expected the published {expected_md5}",
                         hint="the file is damaged or not the right archive: download it again")
    names, unpacked = _members(archive, "zip" if source.archive == "zip" else "tar.gz")
    for name in names:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts or "\\" in name:
            raise FetchError(f"{archive} holds a member outside its folder ({name}); refusing to extract it")
    top = _content_root(names, source)
    if top is None:
        found = sorted({"/".join(PurePosixPath(n).parts[:2]) for n in names})[:8]
        raise FetchError(
            f"{archive} does not look like {source.name}: expected {describe_contents(source)} "
            f"(found: {', '.join(found) or 'nothing'})",
            hint=f"check that this is the {source.name} archive",
        )
    return digest, top, unpacked


def _content_root(names: list[str], source: DataSource) -> str | None:
    """The shallowest folder ('' for the archive's root) holding all of the source's layout folders
    (each with an image) and all of its files."""
    roots: set[str] | None = None
    if source.layout or not source.files:
        roots = _layout_roots(names, source.layout)
    if source.files:
        with_files = _file_roots(names, source.files)
        roots = with_files if roots is None else roots & with_files
    return min(roots, key=lambda r: (r.count("/"), r)) if roots else None


def _file_roots(names: list[str], files: tuple[str, ...]) -> set[str]:
    """The folders under which every one of ``files`` (relative paths) is a member."""
    members = {str(PurePosixPath(n)) for n in names}
    roots: set[str] | None = None
    for wanted in files:
        rel = str(PurePosixPath(wanted))
        found = {m[: -len(rel)].rstrip("/") for m in members if m == rel or m.endswith("/" + rel)}
        roots = found if roots is None else roots & found
    return roots or set()


def _layout_roots(names: list[str], layout: tuple[str, ...]) -> set[str]:
    """The folders ('' for the archive's root) under which every layout folder holds an image."""
    candidates: dict[str, set[str]] = {}
    for name in names:
        p = PurePosixPath(name)
        if p.suffix.lower() not in IMAGE_SUFFIXES or len(p.parts) < 2:
            continue
        for depth in range(len(p.parts) - 1):
            root = "/".join(p.parts[:depth])
            candidates.setdefault(root, set()).add(p.parts[depth])
    return {r for r, subs in candidates.items() if set(layout) <= subs}


# --- extraction ----------------------------------------------------------------------------------
def extract(archive: Path, source: DataSource, top: str, dest: Path, manifest: dict) -> Path:
    """Extract ``archive`` into a temporary folder beside ``dest`` and rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extracting-", dir=dest.parent))
    try:
        try:
            if source.archive == "zip":
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(tmp)
            else:
                with tarfile.open(archive, "r:gz") as tf:
                    tf.extractall(tmp, filter="data")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as exc:
            raise FetchError(f"cannot extract {archive}: {_one_line(exc)}") from None
        root = tmp / top if top else tmp
        if not complete(source, root):
            raise FetchError(f"{archive} extracted without {describe_contents(source)}")
        if source.verify is not None:
            try:
                source.verify(root)
            except DataError as exc:  # name the file as the archive holds it, not by the temporary folder
                what = exc.message.replace(f"{root}{os.sep}", "")
                raise DamagedArchive(f"{archive} holds a damaged file: {what}",
                                     hint="the archive is damaged or not the right one: download it again") from None
        (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            dest.replace(old)
        root.replace(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(source: DataSource, *, url: str | None = None, from_archive: Path | None = None,
          sha256: str | None = None, force: bool = False, keep_archive: bool = False,
          console=None, progress: bool = True) -> FetchResult:
    """Make ``source`` present in the cache (see the module documentation)."""
    if source.kind != "download":
        raise FetchError(f"{source.name} is {source.kind}, there is nothing to fetch")
    dest = datasets_dir() / source.name
    if complete(source, dest) and not force:
        return FetchResult(dest, already=True)
    if from_archive is not None:
        archive = Path(from_archive).expanduser()
        if not archive.is_file():
            raise FetchError(f"--from {archive}: no such file")
    else:
        url = url or source.url
        if not url:
            raise FetchError(f"{source.name} has no download URL")
        archive = downloads_dir() / f"{source.name}{archive_suffix(source)}"
        if not archive.is_file():
            download(url, archive, console=console, progress=progress, label=source.name)
    if console is not None:
        console.print(f"checking {archive.name} ({human_size(archive.stat().st_size)}): checksum, integrity, layout")
    try:
        digest, top, unpacked = check_archive(archive, source, sha256)
    except FetchError:
        if from_archive is None:  # a bad download is useless: the next fetch starts afresh
            archive.unlink(missing_ok=True)
        raise
    dest.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(dest.parent).free
    if free < unpacked + (64 << 20):
        raise FetchError(f"not enough disk space for {source.name} in {dest.parent}: it needs "
                         f"{human_size(unpacked)}, {human_size(free)} is free",
                         hint=f"free some space, or move the cache with GANFORGE_CACHE (the archive stays in {archive.parent})")
    md5 = source.md5.strip().lower() if source.md5 else None  # check_archive verified it
    manifest = {
        "name": source.name, "url": None if from_archive is not None else url,
        "from": str(archive) if from_archive is not None else None,
        "sha256": digest, "archive_bytes": archive.stat().st_size,
        "fetched": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if md5:
        manifest["md5"] = md5
    size = archive.stat().st_size
    if console is not None:
        console.print(f"extracting into {dest}")
    try:
        extract(archive, source, top, dest, manifest)
    except DamagedArchive:
        if from_archive is None:  # as for a failed check: the next fetch downloads afresh
            archive.unlink(missing_ok=True)
        raise
    if from_archive is None and not keep_archive:
        archive.unlink(missing_ok=True)
    return FetchResult(dest, sha256=digest, archive_bytes=size, md5=md5)
