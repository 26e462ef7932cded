"""`ganforge data fetch` against a local HTTP server: good, truncated, corrupt, wrong layout, a server
error and a connection lost mid-download, resuming a partial file, --from, and recipes finding the
result. Archives are built from the real cat faces shipped with the datasets plugin."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from ganforge.cli.app import app
from ganforge.data.sources import MANIFEST, DataSource, datasets_dir
from ganforge.data.fetch import FetchError, check_archive, fetch
from ganforge_datasets import BUNDLED_ROOT
from ganforge_datasets.catalog import CYCLEGAN_SETS, PIX2PIX_SETS

CATS = BUNDLED_ROOT / "grumpify-cats"


def _pngs(domain: str, n: int) -> list[Path]:
    return sorted((CATS / domain).glob("*.png"))[:n]


def cyclegan_zip(top: str = "testset", subs=("trainA", "trainB", "testA", "testB"), n: int = 4) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # stored: a flipped byte is caught by the CRC
        for sub in subs:
            domain = "russian_blue" if sub.endswith("A") else "grumpy"
            for png in _pngs(domain, n):
                zf.write(png, f"{top}/{sub}/{png.name}" if top else f"{sub}/{png.name}")
    return buf.getvalue()


def pix2pix_targz(top: str = "facades", n: int = 3) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for split in ("train", "val", "test"):
            for a, b in zip(_pngs("russian_blue", n), _pngs("grumpy", n)):
                pair = Image.new("RGB", (128, 64))
                pair.paste(Image.open(a).convert("RGB"), (0, 0))
                pair.paste(Image.open(b).convert("RGB"), (64, 0))
                data = io.BytesIO()
                pair.save(data, format="JPEG")
                info = tarfile.TarInfo(f"{top}/{split}/{a.stem}.jpg")
                info.size = data.tell()
                data.seek(0)
                tf.addfile(info, data)
    return buf.getvalue()


class Server:
    """Serves ``files[path] = bytes`` with Range support; ``mode[path]`` misbehaves on purpose."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.mode: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                mode = server.mode.get(self.path, "")
                if body is None:
                    self.send_error(404)
                    return
                if mode == "error":
                    self.send_error(500, "boom")
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and mode != "no-range":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    shown = 0 if mode == "bad-range" else start
                    self.send_header("Content-Range", f"bytes {shown}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if mode == "drop":  # the connection is lost halfway through
                    server.mode[self.path] = ""  # the next request succeeds
                    self.wfile.write(body[start: start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def source(url: str, archive="zip", layout=("trainA", "trainB"), sha256=None) -> DataSource:
    return DataSource("testset", "download", url=url, archive=archive, layout=layout, sha256=sha256)


def _leftovers(cache: Path) -> list[str]:
    """Anything in the datasets folder: a failed fetch must leave nothing there."""
    d = cache / "datasets"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_good_zip_is_checked_extracted_and_recorded(server, cache):
    server.files["/testset.zip"] = body = cyclegan_zip()
    result = fetch(source(server.url + "/testset.zip"), progress=False)
    assert result.path == cache / "datasets" / "testset"
    assert sorted(p.name for p in result.path.iterdir() if p.is_dir()) == ["testA", "testB", "trainA", "trainB"]
    assert len(list((result.path / "trainB").glob("*.png"))) == 4
    manifest = json.loads((result.path / MANIFEST).read_text())
    assert manifest["archive_bytes"] == len(body) and len(manifest["sha256"]) == 64
    assert _leftovers(cache) == ["testset"]
    assert not list((cache / "downloads").iterdir())  # the archive is dropped after extraction
    again = fetch(source(server.url + "/testset.zip"), progress=False)
    assert again.already and len(server.requests) == 1


def test_checksum_known_and_wrong(server, cache):
    import hashlib

    server.files["/testset.zip"] = body = cyclegan_zip()
    with pytest.raises(FetchError, match="SHA-256"):
        fetch(source(server.url + "/testset.zip", sha256="0" * 64), progress=False)
    assert _leftovers(cache) == []
    good = hashlib.sha256(body).hexdigest()
    assert fetch(source(server.url + "/testset.zip", sha256=good), progress=False).sha256 == good


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "layout", "not-an-archive"])
def test_bad_archives_install_nothing(server, cache, damage):
    body = cyclegan_zip()
    if damage == "truncated":
        body = body[: len(body) * 2 // 3]
    elif damage == "corrupt":
        body = bytearray(body)
        body[len(body) // 3] ^= 0xFF  # inside a stored PNG: the member's CRC no longer matches
        body = bytes(body)
    elif damage == "layout":
        body = cyclegan_zip(subs=("horses", "zebras"))
    else:
        body = b"<html>Service temporarily unavailable</html>"
    server.files["/testset.zip"] = body
    with pytest.raises(FetchError) as info:
        fetch(source(server.url + "/testset.zip"), progress=False)
    message = str(info.value)
    if damage == "layout":
        assert "trainA/, trainB/" in message and "horses" in message
    elif damage == "corrupt":
        assert "corrupt" in message or "not a complete zip" in message
    else:
        assert "not a complete zip archive" in message
    assert _leftovers(cache) == []
    assert not list((cache / "downloads").iterdir())  # a bad download is not kept to be "resumed"


def test_server_error_and_offline_say_what_was_tried(server, cache):
    url = server.url + "/testset.zip"
    server.files["/testset.zip"] = cyclegan_zip()
    server.mode["/testset.zip"] = "error"
    with pytest.raises(FetchError, match="HTTP 500") as info:
        fetch(source(url), progress=False)
    assert url in info.value.message and "--from" in info.value.hint
    closed = server.url.rsplit(":", 1)[0] + ":9/testset.zip"  # nothing listens on port 9
    with pytest.raises(FetchError) as info:
        fetch(source(closed), progress=False)
    assert closed in info.value.message and "--from FILE" in info.value.hint
    assert _leftovers(cache) == []


def test_connection_lost_mid_download_then_resumed(server, cache):
    server.files["/testset.zip"] = body = cyclegan_zip()
    server.mode["/testset.zip"] = "drop"
    with pytest.raises(FetchError, match="stopped after") as info:
        fetch(source(server.url + "/testset.zip"), progress=False)
    assert "again to resume" in info.value.hint
    part = cache / "downloads" / "testset.zip.part"
    assert 0 < part.stat().st_size < len(body)
    assert _leftovers(cache) == []  # nothing half-written where runs look
    result = fetch(source(server.url + "/testset.zip"), progress=False)
    assert server.requests[-1] == ("/testset.zip", f"bytes={len(body) // 2}-")  # resumed, not restarted
    assert json.loads((result.path / MANIFEST).read_text())["archive_bytes"] == len(body)
    assert not part.exists()


def test_resume_of_a_partial_file_and_a_server_without_range(server, cache):
    server.files["/testset.zip"] = body = cyclegan_zip()
    downloads = cache / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "testset.zip.part").write_bytes(body[:1000])
    fetch(source(server.url + "/testset.zip"), progress=False)
    assert server.requests[-1][1] == "bytes=1000-"
    # A server that ignores Range sends everything again; the partial file is replaced, not appended to.
    server.mode["/testset.zip"] = "no-range"
    (downloads / "testset.zip.part").write_bytes(b"garbage that is not the start of the file")
    result = fetch(source(server.url + "/testset.zip"), progress=False, force=True)
    assert json.loads((result.path / MANIFEST).read_text())["archive_bytes"] == len(body)


def test_a_resume_answered_with_another_range_is_refused(server, cache):
    server.files["/testset.zip"] = cyclegan_zip()
    server.mode["/testset.zip"] = "bad-range"
    (cache / "downloads").mkdir(parents=True)
    (cache / "downloads" / "testset.zip.part").write_bytes(server.files["/testset.zip"][:500])
    with pytest.raises(FetchError, match="range 'bytes 0-"):
        fetch(source(server.url + "/testset.zip"), progress=False)
    assert _leftovers(cache) == []


def test_no_disk_space_is_said_before_extracting(server, cache, monkeypatch):
    import shutil
    from collections import namedtuple

    import ganforge.data.fetch as gfetch

    server.files["/testset.zip"] = cyclegan_zip()
    real = shutil.disk_usage
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(gfetch.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(FetchError, match="not enough disk space"):
        fetch(source(server.url + "/testset.zip"), progress=False)
    assert _leftovers(cache) == []
    assert (cache / "downloads" / "testset.zip").is_file()  # the good archive is kept for the next try
    monkeypatch.setattr(gfetch.shutil, "disk_usage", real)
    fetch(source(server.url + "/testset.zip"), progress=False)
    assert len(server.requests) == 1  # not downloaded again


def test_a_crash_while_extracting_leaves_nothing_a_run_could_use(server, cache, monkeypatch):
    server.files["/testset.zip"] = cyclegan_zip()
    real = zipfile.ZipFile.extractall

    def half_then_disk_full(self, path=None, *args, **kwargs):
        self.extract(self.namelist()[0], path)  # some files are already written...
        assert any(Path(path).rglob("*.png"))
        raise OSError(28, "No space left on device")  # ...when the disk fills up

    monkeypatch.setattr(zipfile.ZipFile, "extractall", half_then_disk_full)
    with pytest.raises(OSError):
        fetch(source(server.url + "/testset.zip"), progress=False)
    assert _leftovers(cache) == []  # the temporary folder is gone and testset/ never appeared
    monkeypatch.setattr(zipfile.ZipFile, "extractall", real)
    assert fetch(source(server.url + "/testset.zip"), progress=False).path.is_dir()


def test_from_archive_and_tar_gz_pix2pix(tmp_path, cache):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(pix2pix_targz())
    facades = PIX2PIX_SETS["facades"]
    result = fetch(facades, from_archive=archive, progress=False)
    assert result.path == cache / "datasets" / "facades" and archive.exists()  # the user's file is kept
    assert sorted(p.name for p in result.path.iterdir() if p.is_dir()) == ["test", "train", "val"]
    from ganforge_datasets.paired import PAIRED_CONFIGS, build_paired

    domains = build_paired(PAIRED_CONFIGS["facades"](image_size=32))
    assert len(domains["a"]) == len(domains["b"]) == 3
    assert domains["a"][0].shape == (3, 32, 32)
    pair = domains["pairs"][1]  # the paired view: image = left half, target = right half of the same file
    assert (pair["image"] == domains["a"][1]).all() and (pair["target"] == domains["b"][1]).all()
    # a truncated tar.gz is refused, and the facades already installed stay untouched
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(FetchError, match="not a complete tar.gz"):
        fetch(facades, from_archive=bad, force=True, progress=False)
    assert (result.path / MANIFEST).exists() and len(list((result.path / "train").iterdir())) == 3


def test_member_outside_the_folder_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("testset/trainA/x.png", b"x")
        zf.writestr("testset/trainB/y.png", b"y")
        zf.writestr("../evil.txt", b"z")
    archive = tmp_path / "evil.zip"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(FetchError, match="outside its folder"):
        check_archive(archive, source("unused"))


def test_cli_fetch_then_recipe_finds_it_in_the_cache(server, cache, monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    from ganforge.core.recipes import load_recipe
    from ganforge.core.plugins import get_registry

    registry = get_registry()
    spec = registry.get("dataset", "horse2zebra")
    from ganforge.core.errors import DataError

    with pytest.raises(DataError) as info:  # missing: the one command that fetches it
        spec.builder(spec.config())
    assert "ganforge data fetch horse2zebra" in info.value.hint

    server.files["/h2z.zip"] = cyclegan_zip(top="horse2zebra")
    result = runner.invoke(app, ["data", "fetch", "horse2zebra", "--url", server.url + "/h2z.zip", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert str(datasets_dir() / "horse2zebra") in result.output.replace("\n", "")
    domains = spec.builder(spec.config(image_size=32))
    assert len(domains["a"]) == len(domains["b"]) == 4
    recipe = load_recipe("cyclegan-cats", registry, ["data.name=horse2zebra"])
    assert recipe.data.config.path == "horse2zebra"

    listing = runner.invoke(app, ["data", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(listing.output)["datasets"]}
    assert rows["horse2zebra"]["present"] and rows["horse2zebra"]["where"] == "cache"
    assert rows["grumpify-cats"]["present"] and rows["grumpify-cats"]["where"] == "bundled"
    assert "cyclegan-cats" in rows["grumpify-cats"]["recipes"] and "dcgan-cats" in rows["grumpify-cats"]["recipes"]
    assert not rows["monet2photo"]["present"] and rows["monet2photo"]["source"] == CYCLEGAN_SETS["monet2photo"].url


def test_cli_offline_fetch_fails_in_one_line(cache):
    result = CliRunner().invoke(app, ["data", "fetch", "horse2zebra", "--url", "http://127.0.0.1:9/h2z.zip"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    error = next(line for line in lines if line.startswith("error:"))
    assert "http://127.0.0.1:9/h2z.zip" in error
    assert any("--from FILE" in line for line in lines)
    assert "Traceback" not in result.output
