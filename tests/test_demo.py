"""`ganforge demo`: the page loads, draws samples (a seed, a class), interpolates and translates an
upload in a real headless Chromium; malformed requests (bad numbers, unknown names, uploads that are
not images, too large, of a 32-bit mode, damaged; a foreign Host; a wrong method) get one line and a
4xx answer, and the server keeps serving."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from _browser import Browser, chromium_path
from _cli_helpers import DATA, ok, one_error_line, run_cli
from _tiny_runs import has_data, tiny_run

WEB = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
needs_web = pytest.mark.skipif(bool(WEB), reason=f"the demo needs {', '.join(WEB)} (pip install 'ganforge[demo]')")
needs_data = pytest.mark.skipif(not has_data(), reason="no cat / fruit images in GANFORGE_DATA")
needs_browser = pytest.mark.skipif(
    chromium_path() is None or importlib.util.find_spec("websocket") is None,
    reason="no Chromium installed" if chromium_path() is None else "websocket-client is not installed")


def _model(run, **kw):
    from ganforge.core.plugins import get_registry
    from ganforge.io.demo_app import DemoModel
    from ganforge.io.inference import load_for_inference

    loaded = load_for_inference(run, get_registry())
    return DemoModel(loaded, **kw)


def _image_bytes(mode: str = "RGB", size=(40, 30), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    color = 0.5 if mode == "F" else (200, 100, 50) if mode in ("RGB", "CMYK") else 128
    if mode == "CMYK":
        color = (10, 20, 30, 40)
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def _big_int_tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("I", (8, 8), 1 << 20).save(buffer, format="TIFF")
    return buffer.getvalue()


@contextmanager
def serving(app):
    """The app on a free loopback port, in a thread, for the duration of the block."""
    import uvicorn

    from ganforge.cli.demo_cmd import bind

    sock = bind(0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started and time.monotonic() < end:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _get(url: str, data: bytes | None = None, method: str | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read()


# --- requests are checked before any model runs ---------------------------------------------------------
@needs_data
def test_the_model_side_refuses_bad_requests_with_one_line(tmp_path_factory):
    from ganforge.io.demo_app import DemoRequestError

    cgan = _model(tiny_run("cgan-cats-fruit", tmp_path_factory))
    cycle = _model(tiny_run("cyclegan-cats", tmp_path_factory), max_pixels=50 * 50, max_upload_bytes=20_000)
    cases = [
        (lambda: cgan.sample(seed="abc"), "seed must be a whole number, got 'abc'"),
        (lambda: cgan.sample(seed="-1"), "seed must be between 0 and"),
        (lambda: cgan.sample(num="0"), "number of samples must be between 1 and 64, got 0"),
        (lambda: cgan.sample(num="65"), "number of samples must be between 1 and 64, got 65"),
        (lambda: cgan.sample(class_name="banana"), "unknown class 'banana'; this model knows: grumpy, russian_blue, apple, orange"),
        (lambda: cgan.sample(class_name="aple"), "(did you mean 'apple'?)"),
        (lambda: cgan.sample(truncation="0.5"), "this model has no truncation"),
        (lambda: cgan.sample(truncation="2"), "truncation must be in (0, 1], got 2"),
        (lambda: cgan.translate(_image_bytes()), "this model does not translate images"),
        (lambda: cycle.sample(), "this model translates images; it does not draw samples from noise"),
        (lambda: cycle.interpolate(), "this model has no latent space to interpolate"),
        (lambda: cycle.translate(_image_bytes(), "a2c"), "unknown direction 'a2c'"),
        (lambda: cycle.translate(b""), "the upload is empty"),
        (lambda: cycle.translate(b"hello, not an image"), "the upload is not an image"),
        (lambda: cycle.translate(os.urandom(25_000)), "the upload is too large (24 kB; at most 20 kB)"),
        (lambda: cycle.translate(_image_bytes(size=(60, 60))), "the image is too large (60 x 60 pixels"),
        (lambda: cycle.translate(_image_bytes("F", fmt="TIFF")), "the image is 32-bit floating-point (mode F)"),
        (lambda: cycle.translate(_big_int_tiff()), "the image is 32-bit integer (mode I)"),
        (lambda: cycle.translate(_image_bytes(size=(40, 40))[:-40]), "the image is damaged"),
    ]
    for call, expected in cases:
        with pytest.raises(DemoRequestError) as info:
            call()
        assert expected in info.value.message and "\n" not in info.value.message, (expected, info.value.message)
    # What a person may upload: any mode a photo comes in (greyscale, palette, CMYK, RGBA), any size.
    for mode, fmt in (("L", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG")):
        png = Image.open(io.BytesIO(cycle.translate(_image_bytes(mode, fmt=fmt), "b2a")))
        assert png.size == (2 * 32 + 3 * 2, 32 + 2 * 2), mode  # input | translation


@needs_web
@needs_data
def test_http_refuses_malformed_requests_and_keeps_serving(tmp_path_factory):
    from ganforge.io.demo_app import create_app

    model = _model(tiny_run("cyclegan-cats", tmp_path_factory), max_upload_bytes=10_000)
    with serving(create_app(model)) as url:
        for path, data, method, headers, status, expected in [
            ("/api/translate?direction=a2b", b"not an image", "POST", {}, 415, "the upload is not an image"),
            ("/api/translate", os.urandom(20_000), "POST", {}, 413, "the upload is too large"),
            ("/api/translate?direction=zz", _image_bytes(), "POST", {}, 400, "unknown direction 'zz'"),
            ("/api/translate", None, "GET", {}, 405, "no such page"),
            ("/api/sample?seed=1", None, "GET", {}, 400, "does not draw samples"),
            ("/api/nothing", None, "GET", {}, 404, "no such page: /api/nothing"),
        ]:
            code, kind, body = _get(url + path, data, method, headers)
            assert code == status and kind.startswith("application/json"), (path, code, body[:200])
            assert expected in json.loads(body)["error"], (path, body)
        code, _, body = _get(url + "/api/info", headers={"Host": "attacker.example"})
        assert code == 400 and b"Invalid host header" in body  # another site cannot reach it via a browser
        code, kind, body = _get(url + "/api/translate?direction=b2a", _image_bytes(size=(50, 20)), "POST")
        assert code == 200 and kind == "image/png" and Image.open(io.BytesIO(body)).size == (70, 36)
        info = json.loads(_get(url + "/api/info")[2])
        assert info["directions"] == ["a2b", "b2a"] and info["sample"] is False and info["image_size"] == 32


def test_missing_web_packages_are_one_line_naming_the_extra(tmp_path, monkeypatch):
    import ganforge.io.demo_app as demo_app

    monkeypatch.setattr(demo_app, "missing_packages", lambda: ["uvicorn"])
    out = one_error_line(run_cli("demo", "-c", tmp_path))
    assert "ganforge demo needs uvicorn, which is not installed" in out and "pip install 'ganforge[demo]'" in out


@needs_web
def test_a_busy_port_is_one_line(tmp_path_factory):
    from ganforge.cli.demo_cmd import bind

    taken = bind(0)
    try:
        run = tiny_run("dcgan-shapes", tmp_path_factory)
        out = one_error_line(run_cli("demo", "-c", run, "--port", taken.getsockname()[1]))
        assert f"cannot listen on 127.0.0.1:{taken.getsockname()[1]}" in out and "--port" in out
    finally:
        taken.close()


# --- a person at the page ---------------------------------------------------------------------------------
@needs_web
@needs_data
@needs_browser
def test_the_page_samples_and_translates_in_a_browser(tmp_path_factory, tmp_path, monkeypatch):
    import ganforge.cli.demo_cmd as demo_cmd

    cgan_run, cycle_run = tiny_run("cgan-cats-fruit", tmp_path_factory), tiny_run("cyclegan-cats", tmp_path_factory)
    started = {}
    monkeypatch.setattr(demo_cmd, "serve", lambda app, sock, url, open_it=False: started.update(app=app, sock=sock, url=url))
    result = run_cli("demo", "--checkpoint", cgan_run, "--port", "0")  # the command, up to the point it would block
    ok(result)
    assert started["url"].startswith("http://127.0.0.1:") and started["sock"].getsockname()[0] == "127.0.0.1"
    started["sock"].close()

    cgan, cycle = _model(cgan_run), _model(cycle_run)
    from ganforge.io.demo_app import create_app

    with serving(create_app(cgan)) as cgan_url, serving(create_app(cycle)) as cycle_url:
        browser = Browser(cgan_url, tmp_path / "profile")
        try:
            b = browser
            b.wait("document.readyState === 'complete' && document.body.dataset.state === 'ready'")
            assert b.run("document.title") == "cgan-cats-fruit: ganforge demo"
            assert b.run("[...document.querySelectorAll('#class option')].map(o => o.value)") == [
                "", "grumpy", "russian_blue", "apple", "orange"]
            # draw four apples with seed 3: the image the page shows is the one the model draws
            b.run("document.getElementById('seed').value = 3; document.getElementById('num').value = 4;"
                  "document.getElementById('class').value = 'apple'; document.getElementById('draw').click()")
            b.wait("document.body.dataset.state === 'ready' && document.getElementById('result').naturalWidth > 0")
            expected = Image.open(io.BytesIO(cgan.sample(seed=3, num=4, class_name="apple")))
            shown = b.run("[document.getElementById('result').naturalWidth, document.getElementById('result').naturalHeight]")
            assert shown == list(expected.size)
            assert b.run("document.getElementById('caption').textContent") == "seed 3, class apple"
            # a request the server refuses: the reason on the page, and the page still works
            b.run("document.getElementById('num').value = 500; document.getElementById('draw').click()")
            b.wait("document.body.dataset.state === 'error'")
            assert b.run("document.getElementById('message').textContent") == (
                "number of samples must be between 1 and 64, got 500")
            b.run("document.getElementById('num').value = 2; document.getElementById('interpolate').click()")
            b.wait("document.body.dataset.state === 'ready' && document.getElementById('result').src.startsWith('blob:')")
            assert b.run("document.getElementById('message').textContent") == ""

            # the translation page: upload a cat, then files that are not images
            b.call("Page.navigate", url=cycle_url)
            b.wait("document.readyState === 'complete' && !!document.getElementById('translate')")
            assert b.run("document.getElementById('draw')") is None  # no sampling offered for a translator
            cat = sorted((DATA / "grumpify-cats" / "russian_blue").glob("*.png"))[0]
            b.set_files("#file", [cat])
            b.run("document.getElementById('direction').value = 'a2b'; document.getElementById('translate').click()")
            b.wait("document.body.dataset.state === 'ready' && document.getElementById('result').naturalWidth > 0")
            assert b.run("document.getElementById('result').naturalWidth") == 2 * 32 + 3 * 2
            assert b.run("document.getElementById('caption').textContent") == f"{cat.name}: input | a2b"
            shot = browser.screenshot(tmp_path / "demo.png")
            if os.environ.get("GANFORGE_DEMO_SCREENSHOT"):
                Path(os.environ["GANFORGE_DEMO_SCREENSHOT"]).write_bytes(shot.read_bytes())
            assert Image.open(shot).size == (1000, 860)
            for name, data, expected_message in [
                ("notes.txt", b"just text", "the upload is not an image"),
                ("depth.tif", _image_bytes("F", fmt="TIFF"), "the image is 32-bit floating-point (mode F)"),
            ]:
                (tmp_path / name).write_bytes(data)
                b.set_files("#file", [tmp_path / name])
                b.run("document.getElementById('translate').click()")
                b.wait("document.body.dataset.state === 'error'")
                assert expected_message in b.run("document.getElementById('message').textContent")
                b.run("document.body.dataset.state = 'ready'")
        finally:
            browser.close()
        assert json.loads(_get(cycle_url + "/api/info")[2])["recipe"] == "cyclegan-cats"  # still serving
