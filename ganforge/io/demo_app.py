"""``ganforge demo``: a local web page to try a checkpoint (a Starlette app; uvicorn serves it).

The page offers what the algorithm declares (:class:`ganforge.core.components.Capabilities`):
samples for a seed, a class to pick, a truncation slider, a latent interpolation (an animated
GIF), and an upload to translate for each direction. Every request is checked before any model
runs, and a bad one (a seed that is not a number, an unknown class, an upload that is not an image,
too large, or of a mode no photo has) gets a 4xx answer with one line that the page shows; the
server never crashes on a request. Models run one request at a time (a lock), on the CPU.

:class:`DemoModel` is the part without HTTP (what the endpoints call); :func:`create_app` wraps it
in a Starlette application. ``starlette`` and ``uvicorn`` are the ``demo`` extra:
``pip install 'ganforge[demo]'``.
"""

from __future__ import annotations

import html
import io
import json
import threading
from dataclasses import dataclass

import torch

from ganforge.core.components import SampleRequest
from ganforge.core.errors import GanforgeError, did_you_mean

INSTALL_HINT = "pip install 'ganforge[demo]'"
MAX_NUM = 64
MAX_SEED = 2**63 - 1
MAX_UPLOAD_BYTES = 20 * 2**20
MAX_PIXELS = 40_000_000
# Depth maps and scientific data, not photos: 32-bit floating point, and 32-bit integers beyond 16 bits
# (a 16-bit greyscale PNG opens as "I" in some Pillow versions and is accepted).
REFUSED_MODES = {"I": "32-bit integer", "F": "32-bit floating-point"}


class DemoRequestError(GanforgeError):
    """A request the demo refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def missing_packages() -> list[str]:
    import importlib.util

    return [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]


def require_web() -> None:
    missing = missing_packages()
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise GanforgeError(f"ganforge demo needs {' and '.join(missing)}, which {verb} not installed", hint=INSTALL_HINT)


@dataclass
class DemoModel:
    """A loaded checkpoint (:func:`ganforge.io.inference.load_for_inference`) and what the page may ask of it."""

    loaded: object
    component: object | None = None  # the algorithm's registry entry, to name it when its code fails
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS

    def __post_init__(self):
        self.lock = threading.Lock()
        caps = self.loaded.capabilities
        self.can_sample = bool(caps.sample and not caps.sample_inputs)
        self.classes = list(self.loaded.class_names()) if caps.classes else []
        self.directions = list(caps.directions)
        self.size = int((self.loaded.data.image_size if self.loaded.data is not None else None)
                        or getattr(self.loaded.recipe.data.config, "image_size", 0) or 0)

    # --- what the page shows --------------------------------------------------------------------
    def info(self) -> dict:
        caps, recipe = self.loaded.capabilities, self.loaded.recipe
        return {"recipe": recipe.name, "description": recipe.description, "family": recipe.algorithm.name,
                "step": self.loaded.step, "image_size": self.size, "sample": self.can_sample,
                "classes": self.classes, "interpolate": bool(caps.interpolate and self.can_sample),
                "truncation": bool(caps.truncation), "directions": self.directions, "max_num": MAX_NUM,
                "max_upload_mb": round(self.max_upload_bytes / 2**20, 1)}

    # --- checking what a request asks -----------------------------------------------------------
    @staticmethod
    def parse_int(value, name: str, low: int, high: int, default: int) -> int:
        if value is None or str(value).strip() == "":
            return default
        text = str(value).strip()
        try:
            number = int(text)
        except ValueError:
            raise DemoRequestError(f"{name} must be a whole number, got '{text[:40]}'") from None
        if not low <= number <= high:
            raise DemoRequestError(f"{name} must be between {low:,} and {high:,}, got {number:,}")
        return number

    @staticmethod
    def parse_truncation(value) -> float | None:
        if value is None or str(value).strip() == "":
            return None
        try:
            psi = float(str(value).strip())
        except ValueError:
            raise DemoRequestError(f"truncation must be a number in (0, 1], got '{str(value)[:40]}'") from None
        if not 0.0 < psi <= 1.0:
            raise DemoRequestError(f"truncation must be in (0, 1], got {psi:g}")
        return psi

    def class_index(self, name) -> int | None:
        if name is None or str(name).strip() == "":
            return None
        name = str(name).strip()
        if not self.classes:
            raise DemoRequestError("this model was not trained with classes; leave the class empty")
        if name not in self.classes:
            raise DemoRequestError(f"unknown class '{name[:40]}'{did_you_mean(name, self.classes)}; "
                                   f"this model knows: {', '.join(self.classes)}")
        return self.classes.index(name)

    def _guard(self, action: str):
        from contextlib import nullcontext

        from ganforge.core.registry import plugin_code

        return plugin_code(self.component, action) if self.component is not None else nullcontext()

    # --- the model's work -------------------------------------------------------------------------
    def sample(self, seed=None, num=None, class_name=None, truncation=None) -> bytes:
        """A PNG grid of samples."""
        from ganforge.data.images import make_grid_image

        if not self.can_sample:
            raise DemoRequestError("this model translates images; it does not draw samples from noise")
        seed = self.parse_int(seed, "seed", 0, MAX_SEED, 0)
        num = self.parse_int(num, "number of samples", 1, MAX_NUM, 8)
        index = self.class_index(class_name)
        psi = self.parse_truncation(truncation)
        if psi is not None and not self.loaded.capabilities.truncation:
            raise DemoRequestError("this model has no truncation; leave it empty")
        with self.lock, self._guard("while sampling"), torch.no_grad():
            images, cols = self.loaded.algorithm.sample(self.loaded.nets, SampleRequest(
                num=num, seed=seed, class_index=index, truncation=psi))
        return _png(make_grid_image(images.float().cpu(), nrow=cols))

    def interpolate(self, seed=None, class_name=None) -> bytes:
        """An animated GIF walking the latent space."""
        from ganforge.data.images import tensor_to_pil

        if not (self.can_sample and self.loaded.capabilities.interpolate):
            raise DemoRequestError("this model has no latent space to interpolate")
        seed = self.parse_int(seed, "seed", 0, MAX_SEED, 0)
        index = self.class_index(class_name)
        with self.lock, self._guard("while interpolating"), torch.no_grad():
            frames = self.loaded.algorithm.interpolate(self.loaded.nets, seed, index)
        pil = [tensor_to_pil(f.float().cpu()) for f in frames]
        buffer = io.BytesIO()
        pil[0].save(buffer, format="GIF", save_all=True, append_images=pil[1:], duration=80, loop=0)
        return buffer.getvalue()

    def read_upload(self, data: bytes):
        """The uploaded bytes as an 8-bit RGB PIL image, or a request error saying what is wrong."""
        from PIL import Image, ImageOps

        from ganforge.data.images import to_rgb

        if not data:
            raise DemoRequestError("the upload is empty; choose an image file")
        if len(data) > self.max_upload_bytes:
            raise DemoRequestError(f"the upload is too large ({_size(len(data))}; at most {_size(self.max_upload_bytes)})",
                                   status=413)
        try:
            img = Image.open(io.BytesIO(data))
        except Image.UnidentifiedImageError:
            raise DemoRequestError("the upload is not an image (or of a format Pillow cannot read); "
                                   "choose a PNG, JPEG or WebP file", status=415) from None
        except Exception as exc:  # noqa: BLE001 - a broken header raises many kinds
            raise DemoRequestError(f"the upload is not a readable image: {' '.join(str(exc).split())[:120]}", status=415) from None
        width, height = img.size
        if width * height > self.max_pixels:
            raise DemoRequestError(f"the image is too large ({width:,} x {height:,} pixels; at most "
                                   f"{self.max_pixels / 1e6:.0f} megapixels)", status=413)
        try:
            img.load()
            if img.mode == "F" or (img.mode == "I" and not _fits_16_bits(img)):
                raise DemoRequestError(f"the image is {REFUSED_MODES[img.mode]} (mode {img.mode}), not a photo's 8 or "
                                       "16 bits per channel; save it as an 8-bit RGB PNG or JPEG", status=415)
            ImageOps.exif_transpose(img, in_place=True)
            return to_rgb(img)
        except DemoRequestError:
            raise
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt data
            raise DemoRequestError(f"the image is damaged: {' '.join(str(exc).split())[:120]}", status=415) from None

    def translate(self, data: bytes, direction=None) -> bytes:
        """A PNG: the uploaded image (resized and cropped to the model's size) beside its translation."""
        from ganforge.data.images import make_grid_image, to_float, to_tensor

        if not self.directions:
            raise DemoRequestError("this model does not translate images")
        direction = (str(direction).strip() if direction is not None else "") or self.directions[0]
        if direction not in self.directions:
            raise DemoRequestError(f"unknown direction '{direction[:40]}'{did_you_mean(direction, self.directions)}; "
                                   f"this model translates: {', '.join(self.directions)}")
        if not self.size:
            raise DemoRequestError("the checkpoint does not say which image size its model takes", status=500)
        img = self.read_upload(data)
        x = to_float(to_tensor(img, self.size)).unsqueeze(0)
        with self.lock, self._guard("while translating"), torch.no_grad():
            fn = self.loaded.algorithm.translator(self.loaded.nets, direction)
            y = fn(x).float().cpu().clamp(-1, 1)
        return _png(make_grid_image(torch.cat([x, y]), nrow=2))


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} kB" if n >= 2**10 else f"{n} bytes"


def _fits_16_bits(img) -> bool:
    lo, hi = img.getextrema()
    return lo >= 0 and hi <= 65535


def _png(img) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


async def _read_body(request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise DemoRequestError(f"the upload is too large ({_size(int(declared))}; at most {_size(limit)})", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise DemoRequestError(f"the upload is too large (more than {_size(limit)})", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(model: DemoModel):
    """The Starlette application: the page, ``/api/info``, ``/api/sample``, ``/api/interpolate``,
    ``/api/translate`` (the image as the POST body). Answers only requests addressed to this machine
    (``Host`` localhost or 127.0.0.1), so another site cannot reach it through its visitor's browser."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    def refused(exc: GanforgeError, status: int) -> JSONResponse:
        return JSONResponse({"error": exc.message + (f" ({exc.hint})" if exc.hint else "")}, status_code=status)

    async def answer(work, media_type: str):
        try:
            body = await work()
        except DemoRequestError as exc:
            return refused(exc, exc.status)
        except GanforgeError as exc:  # plugin code that failed: named in one line
            return refused(exc, 500)
        except Exception as exc:  # noqa: BLE001 - the server outlives any request
            return JSONResponse({"error": f"the model failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"},
                                status_code=500)
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})

    async def page(request):
        return HTMLResponse(render_page(model.info()))

    async def info(request):
        return JSONResponse(model.info())

    async def sample(request):
        q = request.query_params
        return await answer(lambda: run_in_threadpool(model.sample, q.get("seed"), q.get("num"), q.get("class"),
                                                      q.get("truncation")), "image/png")

    async def interpolate(request):
        q = request.query_params
        return await answer(lambda: run_in_threadpool(model.interpolate, q.get("seed"), q.get("class")), "image/gif")

    async def translate(request):
        async def work():
            data = await _read_body(request, model.max_upload_bytes)
            return await run_in_threadpool(model.translate, data, request.query_params.get("direction"))

        return await answer(work, "image/png")

    async def not_found(request, exc):
        return JSONResponse({"error": f"no such page: {request.url.path}"}, status_code=getattr(exc, "status_code", 404))

    routes = [Route("/", page), Route("/api/info", info), Route("/api/sample", sample),
              Route("/api/interpolate", interpolate), Route("/api/translate", translate, methods=["POST"])]
    hosts = ["127.0.0.1", "localhost", "[::1]", "::1"]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
                     exception_handlers={404: not_found, 405: not_found})


def render_page(info: dict) -> str:
    """The one page: no external script, style or font (it works offline)."""
    esc = html.escape
    controls = []
    if info["sample"]:
        row = ['<label>seed <input id="seed" type="number" min="0" value="0"></label>',
               f'<label>samples <input id="num" type="number" min="1" max="{info["max_num"]}" value="8"></label>']
        if info["classes"]:
            options = "".join(f'<option value="{esc(c)}">{esc(c)}</option>' for c in info["classes"])
            row.append(f'<label>class <select id="class"><option value="">every class</option>{options}</select></label>')
        if info["truncation"]:
            row.append('<label>truncation <input id="truncation" type="number" min="0.05" max="1" step="0.05" '
                       'value="1"></label>')
        row.append('<button id="draw" type="button">Draw samples</button>')
        if info["interpolate"]:
            row.append('<button id="interpolate" type="button">Interpolate</button>')
        controls.append(f'<section id="sampling"><h2>Samples</h2><div class="row">{"".join(row)}</div></section>')
    if info["directions"]:
        options = "".join(f'<option value="{esc(d)}">{esc(d)}</option>' for d in info["directions"])
        controls.append(
            '<section id="translation"><h2>Translate an image</h2><div class="row">'
            f'<label>direction <select id="direction">{options}</select></label>'
            '<input id="file" type="file" accept="image/*">'
            '<button id="translate" type="button">Translate</button></div>'
            f'<p class="muted">Any photo up to {info["max_upload_mb"]:g} MB; it is resized and cropped to '
            f'{info["image_size"]} x {info["image_size"]} pixels.</p></section>')
    data = json.dumps(info).replace("</", "<\\/")  # no "</script>" inside the script
    facts = (f'{esc(info["family"])} &middot; step {info["step"]:,} &middot; {info["image_size"]} x {info["image_size"]} px'
             + (f' &middot; classes: {esc(", ".join(info["classes"]))}' if info["classes"] else ""))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(info["recipe"])}: ganforge demo</title>
<style>{_CSS}</style></head>
<body data-state="ready">
<header><h1>{esc(info["recipe"])}</h1><p class="muted" id="info">{facts}</p>
<p class="muted">{esc(info["description"])}</p></header>
{"".join(controls)}
<p id="message" role="alert"></p>
<figure><img id="result" alt="the result appears here"><figcaption id="caption"></figcaption></figure>
<footer class="muted">ganforge demo, served on this computer only.</footer>
<script>const INFO = {data};
{_JS}</script>
</body></html>
"""


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:880px;padding:16px 24px;color:#222;background:#fafafa}
h1{margin:0;font-size:22px}h2{font-size:16px;margin:18px 0 8px}.muted{color:#666;margin:4px 0}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:center}label{display:flex;gap:6px;align-items:center}
input[type=number]{width:7em}button{padding:5px 14px;border:1px solid #1565c0;background:#1565c0;color:#fff;border-radius:4px;cursor:pointer}
button:disabled{opacity:.5;cursor:wait}#message{min-height:1.4em;font-weight:600}#message.error{color:#c62828}
figure{margin:12px 0}#result{image-rendering:pixelated;width:min(100%,384px);border:1px solid #ddd;background:#fff}
#result:not([src]){display:none}footer{margin-top:24px;font-size:13px}
"""

_JS = """
const $ = (id) => document.getElementById(id);
const value = (id) => ($(id) ? $(id).value : "");
function busy(on, text) {
  document.body.dataset.state = on ? "busy" : document.body.dataset.state;
  for (const b of document.querySelectorAll("button")) b.disabled = on;
  if (on) { $("message").textContent = text; $("message").className = ""; }
}
async function show(response, caption) {
  if (!response.ok) {
    let text = "the server answered " + response.status;
    try { text = (await response.json()).error || text; } catch (e) {}
    throw new Error(text);
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  await new Promise((resolve, reject) => { const img = $("result"); img.onload = resolve; img.onerror = () => reject(new Error("the answer is not an image")); img.src = url; });
  $("caption").textContent = caption;
}
async function run(text, action) {
  busy(true, text);
  try {
    await action();
    $("message").textContent = ""; document.body.dataset.state = "ready";
  } catch (e) {
    $("message").textContent = e.message; $("message").className = "error"; document.body.dataset.state = "error";
  } finally { busy(false); }
}
function query(extra) {
  const q = new URLSearchParams({seed: value("seed"), ...extra});
  if (value("class")) q.set("class", value("class"));
  return q.toString();
}
if ($("draw")) $("draw").onclick = () => run("drawing...", async () => {
  const q = new URLSearchParams(query({num: value("num")}));
  if ($("truncation") && value("truncation") !== "1") q.set("truncation", value("truncation"));
  await show(await fetch("/api/sample?" + q), "seed " + value("seed") + (value("class") ? ", class " + value("class") : ""));
});
if ($("interpolate")) $("interpolate").onclick = () => run("interpolating...", async () => {
  await show(await fetch("/api/interpolate?" + query({})), "a walk through the latent space, seed " + value("seed"));
});
if ($("translate")) $("translate").onclick = () => run("translating...", async () => {
  const file = $("file").files[0];
  if (!file) throw new Error("choose an image file first");
  const r = await fetch("/api/translate?" + new URLSearchParams({direction: value("direction")}),
                        {method: "POST", body: file, headers: {"Content-Type": file.type || "application/octet-stream"}});
  await show(r, file.name + ": input | " + value("direction"));
});
"""
