"""``RUN/report.html``: one page that shows a run.

Written at every progress grid and at the end of a run (``ganforge report RUN`` writes it again at
any time). It shows the recipe, the run's state (step, wall time, images/s, running / finished /
interrupted), the loss curves as an inline SVG drawn from ``metrics.jsonl``, the progress grids
with a slider, and the final samples. Images are referenced by relative paths inside the run
folder (``samples/step-*.png``), so the page works wherever the folder is copied, costs nothing to
rewrite at every grid, and needs no network: no external script, style or font.
"""

from __future__ import annotations

import html
import json
import math
import time
import tomllib
from pathlib import Path

from ganforge.io.runfiles import METRICS_FILE, RECIPE_FILE, REPORT_FILE, SAMPLES_DIR, STATUS_FILE, read_metrics, write_atomic_text
NOT_LOSSES = ("step", "time", "images_per_s", "lr_factor")
MAX_POINTS = 800
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _grids(run_dir: Path) -> list[tuple[int, str]]:
    out = []
    for p in (run_dir / SAMPLES_DIR).glob("step-*.png"):
        try:
            out.append((int(p.stem.split("-", 1)[1]), f"{SAMPLES_DIR}/{p.name}"))
        except ValueError:
            continue
    return sorted(out)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def loss_svg(rows: list[dict], width: int = 760, height: int = 300) -> str:
    """An SVG line chart of every loss in ``rows`` against the step (no JavaScript needed)."""
    keys = [k for k in (rows[-1] if rows else {}) if k not in NOT_LOSSES]
    if not rows or not keys:
        return '<p class="muted">no metrics logged yet</p>'
    stride = max(1, math.ceil(len(rows) / MAX_POINTS))
    pts = rows[::stride] if rows[-1] is rows[::stride][-1] else rows[::stride] + [rows[-1]]
    steps = [float(r["step"]) for r in pts]
    values = [float(r[k]) for r in pts for k in keys if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
    if not values:
        return '<p class="muted">no finite losses logged yet</p>'
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(values), max(values)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.04 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 52, 24, 10, 30
    w, h = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - x0) / (x1 - x0) * w

    def sy(y):
        return top + (1 - (y - y0) / (y1 - y0)) * h

    parts = [f'<svg id="loss-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="loss curves">',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fff" stroke="#ccc"/>']
    for t in _nice_ticks(y0, y1):
        y = sy(t)
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>')
    for t in _nice_ticks(x0, x1, 6):
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + h}" stroke="#f3f3f3"/>'
                     f'<text x="{x:.1f}" y="{top + h + 16}" text-anchor="middle" class="tick">{int(t)}</text>')
    legend = []
    for i, key in enumerate(keys):
        color = COLORS[i % len(COLORS)]
        coords = [f"{sx(float(r['step'])):.1f},{sy(float(r[key])):.1f}" for r in pts
                  if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        if coords:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.4" points="{" ".join(coords)}">'
                         f'<title>{html.escape(key)}</title></polyline>')
        legend.append(f'<span class="key"><i style="background:{color}"></i>{html.escape(key)} '
                      f'{float(rows[-1].get(key, float("nan"))):.4g}</span>')
    parts.append(f'<text x="{left + w / 2}" y="{height - 2}" text-anchor="middle" class="tick">step</text></svg>')
    return "".join(parts) + f'<div class="legend">{"".join(legend)}</div>'


def read_status(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def write_report(run_dir: str | Path, status: str | None = None) -> Path:
    """Write ``RUN/report.html`` (atomically). ``status`` is ``running``, ``finished`` or
    ``interrupted``; without it the state recorded at the last write is kept (or inferred)."""
    run_dir = Path(run_dir)
    recipe_text = (run_dir / RECIPE_FILE).read_text(encoding="utf-8") if (run_dir / RECIPE_FILE).exists() else ""
    try:
        recipe = tomllib.loads(recipe_text) if recipe_text else {}
    except tomllib.TOMLDecodeError:
        recipe = {}
    everything = read_metrics(run_dir / METRICS_FILE)
    rows = [r for r in everything if "eval" not in r]  # scores taken during training are drawn apart
    evals = [r for r in everything if isinstance(r.get("eval"), dict)]
    grids = _grids(run_dir)
    total = recipe.get("train", {}).get("steps")
    step = max([rows[-1]["step"] if rows else 0] + [g[0] for g in grids[-1:]])
    if status is None:
        status = read_status(run_dir).get("status") or (
            "finished" if total and step >= total else "interrupted")
    if status in ("finished", "interrupted", "running"):
        write_atomic_text(run_dir / STATUS_FILE, json.dumps({"status": status, "step": step,
                                                         "updated": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    page = _page(run_dir, recipe, recipe_text, rows, grids, status, step, total, evals)
    out = run_dir / REPORT_FILE
    write_atomic_text(out, page)
    return out


def _section(title: str, body: str, ident: str) -> str:
    return f'<section id="{ident}"><h2>{html.escape(title)}</h2>{body}</section>'


def _component(recipe: dict, section: str) -> str:
    value = recipe.get(section)
    if isinstance(value, dict):
        return str(value.get("name", ""))
    return str(value or "")


def _data_label(recipe: dict) -> str:
    name = _component(recipe, "data")
    data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    path = str(data.get("path") or "")
    return f"{name} ({path})" if path and path != name else name


def _scores(run_dir: Path, evals: list[dict]) -> str:
    """The curve of the main score taken during training (``[eval]``) and the best checkpoint."""
    if not evals:
        return ""
    key = next((k for k in evals[-1]["eval"] if not k.endswith(("_std", "_subset_size", "_subsets"))), None)
    if key is None:
        return ""
    points = [{"step": r["step"], key: r["eval"][key]} for r in evals if isinstance(r["eval"].get(key), (int, float))]
    note = ""
    try:
        best = json.loads((run_dir / "checkpoints" / "best.json").read_text(encoding="utf-8"))
        note = (f'<p>best: step {int(best["step"]):,} ({html.escape(str(best["score"]))} {float(best["value"]):.4g}), '
                f'<code>checkpoints/best</code></p>')
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return _section(f"Scores ({key})", loss_svg(points) + note, "scores")


def _page(run_dir: Path, recipe: dict, recipe_text: str, rows: list[dict], grids: list[tuple[int, str]],
          status: str, step: int, total: int | None, evals: list[dict] | None = None) -> str:
    esc = html.escape
    name = recipe.get("name") or run_dir.name
    wall = rows[-1].get("time") if rows else None
    rates = [r["images_per_s"] for r in rows if r.get("images_per_s")]
    rate = rates[-1] if rates else None
    mean_rate = sum(rates) / len(rates) if rates else None  # every process's images, like the log
    facts = [
        ("state", f'<span class="status {esc(status)}">{esc(status)}</span>'),
        ("step", f"{step:,}" + (f" / {total:,}" if total else "")),
        ("wall time", _duration(wall)),
        ("images/s", (f"{rate:,.1f} (last)" if rate else "-") + (f", {mean_rate:,.1f} (mean)" if mean_rate else "")),
        ("algorithm", esc(_component(recipe, "algorithm"))),
        ("data", esc(_data_label(recipe))),
        ("networks", esc(" / ".join(x for x in (_component(recipe, "generator"), _component(recipe, "discriminator")) if x))),
        ("loss", esc(_component(recipe, "loss"))),
        ("batch", esc(str(recipe.get("train", {}).get("batch_size", "-")))),
        ("updated", time.strftime("%Y-%m-%d %H:%M:%S")),
    ]
    facts_html = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts if v)
    head = (f'<header><h1>{esc(str(name))}</h1><p class="muted">{esc(str(recipe.get("description", "")))}</p>'
            f'<table class="facts">{facts_html}</table></header>')

    losses = _section("Losses", loss_svg(rows), "losses") + _scores(run_dir, evals or [])

    if grids:
        last = len(grids) - 1
        thumbs = "".join(
            f'<img class="thumb{" on" if i == last else ""}" src="{esc(src)}" alt="step {s}" data-i="{i}" '
            f'data-step="{s}" title="step {s}">' for i, (s, src) in enumerate(grids))
        progress_body = (
            f'<div class="slider"><input id="grid-slider" type="range" min="0" max="{last}" value="{last}" '
            f'aria-label="progress grid"> <span id="grid-step">step {grids[-1][0]}</span></div>'
            f'<img id="grid" class="grid" src="{esc(grids[-1][1])}" alt="progress grid at step {grids[-1][0]}">'
            f'<div class="strip">{thumbs}</div>')
        final_step, final_src = grids[-1]
        final_title = "Final samples" if status == "finished" else "Latest samples"
        final = _section(f"{final_title} (step {final_step})",
                         f'<img class="final" src="{esc(final_src)}" alt="samples at step {final_step}">', "final")
    else:
        progress_body = '<p class="muted">no progress grid yet</p>'
        final = ""
    progress = _section(f"Progress ({len(grids)} grid{'s' if len(grids) != 1 else ''})", progress_body, "progress")
    extra = ""
    if (run_dir / "progress.gif").exists():
        extra = _section("Animation", '<img class="final" src="progress.gif" alt="progress grids over training">', "gif")
    recipe_block = _section("Recipe", f"<details><summary>recipe.toml (fully resolved)</summary>"
                                      f"<pre>{esc(recipe_text)}</pre></details>", "recipe")
    refresh = '<meta http-equiv="refresh" content="60">' if status == "running" else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(str(name))}: {esc(status)} at step {step}</title>
<style>{_CSS}</style></head>
<body data-status="{esc(status)}">
{head}{final}{losses}{progress}{extra}{recipe_block}
<footer class="muted">ganforge run report &middot; {esc(str(run_dir.name))} &middot;
regenerate with <code>ganforge report {esc(str(run_dir))}</code> <span id="load-status"></span></footer>
<script>{_JS}</script>
</body></html>
"""


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1000px;padding:16px 24px;color:#222;background:#fafafa}
h1{margin:0 0 2px;font-size:22px}h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
.muted{color:#777}.facts{border-collapse:collapse;margin-top:8px}.facts th{text-align:left;font-weight:600;padding:1px 14px 1px 0;color:#555}
.facts td{padding:1px 0}.status{padding:1px 8px;border-radius:9px;color:#fff;font-weight:600}
.status.finished{background:#2e7d32}.status.running{background:#1565c0}.status.interrupted{background:#c62828}
.grid,.final{image-rendering:pixelated;max-width:100%;width:520px;display:block;border:1px solid #ddd;background:#fff}
.strip{display:flex;flex-wrap:wrap;gap:4px;margin-top:8px}.thumb{width:72px;cursor:pointer;opacity:.6;border:2px solid transparent}
.thumb.on{opacity:1;border-color:#1565c0}.slider{display:flex;align-items:center;gap:10px;margin-bottom:8px}
#grid-slider{width:420px}.legend{display:flex;flex-wrap:wrap;gap:14px;margin-top:4px}.key i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:5px}
.tick{font-size:11px;fill:#666}pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;font-size:12px}
footer{margin-top:28px;font-size:12px}
"""

_JS = """
(function(){
  var errors=[];
  window.addEventListener('error',function(e){errors.push(String(e.message||e.type));},true);
  var slider=document.getElementById('grid-slider'),grid=document.getElementById('grid'),label=document.getElementById('grid-step');
  var thumbs=Array.prototype.slice.call(document.querySelectorAll('.thumb'));
  function show(i){var t=thumbs[i];if(!t)return;grid.src=t.getAttribute('src');grid.alt='progress grid at step '+t.dataset.step;
    label.textContent='step '+t.dataset.step;slider.value=i;thumbs.forEach(function(x,j){x.classList.toggle('on',j==i);});}
  if(slider){slider.addEventListener('input',function(){show(+slider.value);});
    thumbs.forEach(function(t,i){t.addEventListener('click',function(){show(i);});});}
  window.addEventListener('load',function(){
    var imgs=Array.prototype.slice.call(document.images),bad=imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0);});
    var b=document.body;b.dataset.images=imgs.length;b.dataset.imagesFailed=bad.length;b.dataset.errors=errors.length;
    b.dataset.errorText=errors.join(' | ');b.dataset.loaded='1';
    if(bad.length){document.getElementById('load-status').textContent='('+bad.length+' image(s) missing: '+bad.map(function(i){return i.getAttribute('src');}).join(', ')+')';}
  });
})();
"""
