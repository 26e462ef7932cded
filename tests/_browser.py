"""A headless Chromium driven through the Chrome DevTools protocol (websocket-client), for the page tests.

``Browser(url, profile_dir)`` starts Chromium on ``url``; ``run(js)`` evaluates JavaScript in the
page (awaiting promises) and returns its value; ``wait(js)`` polls until it is truthy;
``set_files(selector, paths)`` fills a file input as a person choosing files would;
``screenshot(path)`` writes a PNG. ``chromium_path()`` is None when no Chromium is installed.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self, url: str, profile: Path, size: tuple[int, int] = (1000, 860), timeout: float = 30.0):
        import websocket  # websocket-client

        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a stale one names a port nobody listens on
        self.process = subprocess.Popen(
            [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)  # its own process group: Debian's `chromium` is a script that starts the browser
        try:
            port = self._devtools_port(profile / "DevToolsActivePort", timeout)
            page = self._page(port, timeout)
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self.ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Runtime.enable")
        # The page's viewport is exactly `size` (the window's outer size includes a title bar).
        self.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False)
        self.wait(f"location.href.startsWith({json.dumps(url)}) && document.readyState === 'complete'", timeout)

    def _devtools_port(self, path: Path, timeout: float) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited with {self.process.returncode} before it listened")
            try:
                return int(path.read_text().splitlines()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        raise BrowserError("chromium did not open its DevTools port")

    def _page(self, port: int, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return pages[0]
            except OSError:
                pass
            time.sleep(0.05)
        raise BrowserError("chromium shows no page")

    def call(self, method: str, **params):
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def run(self, js: str):
        result = self.call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{js[:80]}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def wait(self, js: str, timeout: float = 30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.run(js)
            if value:
                return value
            time.sleep(0.05)
        raise BrowserError(f"timed out waiting for {js}")

    def set_files(self, selector: str, paths: list[Path]) -> None:
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        self.call("DOM.setFileInputFiles", nodeId=node, files=[str(p) for p in paths])

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                self.call("Browser.close")
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            ws.close()
        # The browser outlives the launcher script (it is re-parented), so end the whole group.
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait
            while time.monotonic() < end and _group_alive(self.process.pid):
                self.process.poll()
                time.sleep(0.05)
            if not _group_alive(self.process.pid):
                break
        self.process.poll()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
