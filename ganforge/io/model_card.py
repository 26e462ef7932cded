"""``RUN/MODEL_CARD.md``: what a trained model is, in the layout of a Hugging Face model card.

YAML front matter (library, task, tags and, when the run has scores, a ``model-index``), then the
model's details, its intended uses and limits (memorisation risk on small data), how to use it, the
training data and its size, the training procedure (the full recipe), training time and hardware,
the scores if any, and the latest sample grid. Written at the end of training (a callback in
:mod:`ganforge.train.model_card`) and by ``ganforge report RUN``; everything comes from the run
folder's files, so it can be rewritten at any time.

The hardware a run trained on is recorded once, at the end of training, in ``RUN/hardware.json``
(see :func:`write_hardware`); a card written without it says the hardware was not recorded.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from pathlib import Path
from typing import Any

from ganforge.io.runfiles import METRICS_FILE, RECIPE_FILE, SAMPLES_DIR, read_metrics, write_atomic_text

MODEL_CARD_FILE = "MODEL_CARD.md"
HARDWARE_FILE = "hardware.json"
EVAL_DIR = "eval"
SMALL_DATA = 1000  # fewer training images than this: memorisation is a real risk (the card says so)


# --- reading the run folder ---------------------------------------------------------------------------
def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _latest_model(run_dir: Path) -> Path | None:
    checkpoints = run_dir / "checkpoints"
    try:
        name = (checkpoints / "latest").read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    candidates = [checkpoints / name] if name else []
    candidates += sorted(checkpoints.glob("step-*"), reverse=True)
    return next((c / "model.safetensors" for c in candidates if (c / "model.safetensors").is_file()), None)


def _model_header(path: Path | None) -> tuple[dict[str, str], dict[str, int]]:
    """The checkpoint's metadata and the parameter count of each stored network, from the
    safetensors header alone (8 bytes of length, then JSON): no tensor is read, no torch imported."""
    if path is None:
        return {}, {}
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 0 < size < 100 * 2**20:
                return {}, {}
            header = json.loads(fh.read(size))
    except (OSError, ValueError):
        return {}, {}
    meta = header.pop("__metadata__", None) or {}
    counts: dict[str, int] = {}
    for key, info in header.items():
        if isinstance(info, dict) and isinstance(info.get("shape"), list):
            role = key.split(".", 1)[0]
            counts[role] = counts.get(role, 0) + math.prod(int(n) for n in info["shape"])
    return {k: v for k, v in meta.items() if isinstance(v, str)}, counts


def _scores(run_dir: Path, rows: list[dict]) -> list[dict]:
    """Scores of ``ganforge eval`` (RUN/eval/step-*.json) and those taken during training."""
    found = []
    for path in sorted((run_dir / EVAL_DIR).glob("step-*.json")):
        data = _json(path)
        if isinstance(data, dict) and isinstance(data.get("scores"), dict):
            found.append({"step": data.get("step"), "scores": data["scores"], "source": f"{EVAL_DIR}/{path.name}",
                          "generated": data.get("num_generated"), "real": data.get("num_real"),
                          "extractor": data.get("extractor"), "direction": data.get("direction")})
    for row in rows:
        if isinstance(row.get("eval"), dict):
            found.append({"step": row.get("step"), "scores": row["eval"], "source": "during training"})
    return found


def read_hardware(run_dir: Path) -> dict:
    data = _json(Path(run_dir) / HARDWARE_FILE)
    return data if isinstance(data, dict) else {}


def write_hardware(run_dir: Path, info: dict) -> Path:
    path = Path(run_dir) / HARDWARE_FILE
    write_atomic_text(path, json.dumps(info, indent=2) + "\n")
    return path


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo, else the platform's processor string)."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("model name", "hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


# --- formatting -----------------------------------------------------------------------------------------
def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value) if math.isfinite(value) else json.dumps(str(value))
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    if seconds < 10:
        return f"{seconds:.2g} s"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {s:02d} s" if m else f"{s} s")


def _name(section: Any) -> str:
    return str(section.get("name", "")) if isinstance(section, dict) else ""


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


def _options(section: Any, skip: tuple[str, ...] = ("name",)) -> str:
    if not isinstance(section, dict):
        return ""
    return ", ".join(f"{k} = {_value(v)}" for k, v in section.items() if k not in skip and v not in ("", [], {}))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _kind(dataset: dict) -> str:
    """Image-to-image when the data has several domains (unpaired) or items with several images
    (pairs); noise-to-image otherwise."""
    domains = dataset.get("domains") if isinstance(dataset.get("domains"), dict) else {}
    paired = any(list((i.get("fields") or {}).values()).count("image") > 1 for i in domains.values() if isinstance(i, dict))
    return "image-to-image" if len(domains) > 1 or paired else "noise-to-image"


def _json_str(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


# --- the card ---------------------------------------------------------------------------------------------
def model_card(run_dir: str | Path) -> str:
    """The text of ``RUN/MODEL_CARD.md`` from the run folder's files."""
    run_dir = Path(run_dir)
    recipe_text = (run_dir / RECIPE_FILE).read_text(encoding="utf-8") if (run_dir / RECIPE_FILE).is_file() else ""
    try:
        recipe = tomllib.loads(recipe_text) if recipe_text else {}
    except tomllib.TOMLDecodeError:
        recipe = {}
    everything = read_metrics(run_dir / METRICS_FILE)
    rows = [r for r in everything if "eval" not in r]
    model_file = _latest_model(run_dir)
    meta, params = _model_header(model_file)
    dataset = _json_str(meta.get("dataset")) or {}
    hardware = read_hardware(run_dir)
    scores = _scores(run_dir, everything)
    grids = sorted((run_dir / SAMPLES_DIR).glob("step-*.png"))

    name = str(recipe.get("name") or run_dir.name)
    description = str(recipe.get("description") or "")
    family = _name(recipe.get("algorithm")) or "unknown"
    kind = _kind(dataset)
    step = int(meta.get("step") or (rows[-1]["step"] if rows else 0))
    total = (recipe.get("train") or {}).get("steps")
    domains = dataset.get("domains") if isinstance(dataset.get("domains"), dict) else {}
    sizes = {d: int(i.get("size") or 0) for d, i in domains.items() if isinstance(i, dict)}
    n_images = sum(sizes.values())
    classes = next((list(i["class_names"]) for i in domains.values() if isinstance(i, dict) and i.get("class_names")), [])
    image_size = dataset.get("image_size") or (recipe.get("data") or {}).get("image_size")
    data = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    wall = rows[-1].get("time") if rows else None
    rates = [r["images_per_s"] for r in rows if r.get("images_per_s")]
    batch = (recipe.get("train") or {}).get("batch_size")
    relative = model_file.relative_to(run_dir).as_posix() if model_file is not None else "(no checkpoint yet)"
    task = "image-to-image" if kind == "image-to-image" else "unconditional-image-generation"

    # --- front matter
    tags = ["ganforge", "gan", family, name] + (["class-conditional"] if classes else []) + [_name(data)] * bool(_name(data))
    tags = list(dict.fromkeys(t for t in tags if t))
    front = ["---", "library_name: ganforge", f"pipeline_tag: {task}", "tags:"] + [f"- {_yaml_scalar(t)}" for t in tags]
    front.append(f"ganforge_recipe: {_yaml_scalar(name)}")
    front.append(f"ganforge_step: {step}")
    index = [s for s in scores if s["source"] != "during training"] or scores
    if index:
        latest = index[-1]
        front += ["model-index:", f"- name: {_yaml_scalar(name)}", "  results:", "  - task:",
                  f"      type: {task}", "    dataset:", f"      name: {_yaml_scalar(_name(data) or 'training data')}",
                  f"      type: {_yaml_scalar(_name(data) or 'images')}", "    metrics:"]
        for key, value in latest["scores"].items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                front += [f"    - type: {_yaml_scalar(key)}", f"      value: {_yaml_scalar(float(value))}",
                          f"      name: {_yaml_scalar(key)}"]
    front.append("---")

    out = front + ["", f"# Model card for {name}", ""]
    if description:
        out += [description, ""]
    what = ("translates images between domains" if kind == "image-to-image"
            else "draws images from random noise" + (" of a chosen class" if classes else ""))
    out += [f"A generative adversarial network trained with ganforge from the recipe `{name}`: it {what}.", ""]

    # --- details
    out += ["## Model details", "", "| | |", "|---|---|", f"| algorithm (family) | `{family}` |", f"| task | {task} |"]
    for section in ("generator", "discriminator", "loss"):
        part = recipe.get(section)
        if isinstance(part, dict):
            opts = _options(part)
            out.append(f"| {section} | `{_name(part)}`" + (f" ({_cell(opts)})" if opts else "") + " |")
    if image_size:
        out.append(f"| image size | {image_size} x {image_size} pixels, RGB, values in [-1, 1] |")
    for role, count in params.items():
        out.append(f"| `{role}` | {count:,} stored values (weights and buffers) |")
    if classes:
        out.append(f"| classes | {_cell(', '.join(classes))} |")
    out.append(f"| checkpoint | `{relative}` (step {step:,}) |")
    out.append("")

    # --- uses and limits
    out += ["## Uses", "", "### Direct use", ""]
    if kind == "image-to-image":
        out.append("Translating images like those of its training data (same kind of subject, framing and size), "
                   "for research, teaching and experiments with image translation.")
    else:
        out.append("Drawing images like those of its training data, for research, teaching and experiments with "
                   "generative models (seeds, interpolation" + (", classes" if classes else "") + ").")
    out += ["", "### Out-of-scope use", "",
            "Anything that presents its outputs as real photographs, or decides about people from them. "
            "It knows only its training images: it says nothing reliable about anything else.", ""]
    out += ["## Bias, risks, and limitations", ""]
    if n_images and kind == "image-to-image":
        out.append(f"- **Small data:** it was trained on {n_images:,} images" + (
            "; a translation network trained on so few works only on images very like them, and can carry "
            "details of its training images into its outputs." if n_images < SMALL_DATA else "."))
    elif n_images:
        if n_images < SMALL_DATA:
            out.append(f"- **Memorisation risk:** it was trained on only {n_images:,} images. A GAN trained on so few "
                       "can reproduce training images almost exactly; check with `ganforge eval RUN --metric "
                       "memorisation` (noise-to-image models) before sharing its outputs, and do not share them "
                       "where the training images may not be shared.")
        else:
            out.append(f"- **Memorisation:** it was trained on {n_images:,} images; GANs can still copy training "
                       "images, which `ganforge eval RUN --metric memorisation` measures (noise-to-image models).")
    else:
        out.append("- **Memorisation risk:** the size of its training data was not recorded; a GAN trained on few "
                   "images can reproduce them almost exactly.")
    memo = next((s for s in reversed(scores) if any(k.endswith("memorisation_closer") for k in s["scores"])), None)
    if memo is not None:
        key = next(k for k in memo["scores"] if k.endswith("memorisation_closer"))
        copies = memo["scores"].get(key[: -len("memorisation_closer")] + "memorisation_copies")
        out.append(f"  Measured at step {memo['step']}: {float(memo['scores'][key]):.0%} of the samples are closer to "
                   "a training image than that image is to any other training image"
                   + (f"; {int(copies)} near-copies" if copies is not None else "") + ".")
    out += ["- Its outputs reflect its training data only: subjects, styles and biases the data lacks or "
            "over-represents, the model lacks or over-represents.",
            f"- Trained for {step:,}" + (f" of {int(total):,}" if total else "") + " steps"
            + ("; samples of a short run are blurry and repetitive." if total and step < 1000 else "."),
            "- Its outputs may carry the terms of use of its training images.", ""]

    # --- how to use
    out += ["## How to get started with the model", "", "```bash"]
    if kind == "image-to-image":
        out.append("ganforge translate --checkpoint RUN --input photos/ --output translated/")
    else:
        out.append("ganforge sample --checkpoint RUN --output samples.png --seed 0"
                   + (f" --class {classes[0]}" if classes else ""))
    out += ["ganforge demo --checkpoint RUN          # a local web page to try it",
            "ganforge export --checkpoint RUN --format onnx --output model.onnx", "```", "",
            "`RUN` is this folder. The checkpoint holds its recipe and component names, so the commands need "
            "nothing else (the plugins that built it must be installed).", ""]

    # --- training
    out += ["## Training details", "", "### Training data", ""]
    settings = _options(data, skip=("name", "image_size"))
    out.append(f"- dataset: `{_name(data) or 'unknown'}`" + (f" ({_cell(settings)})" if settings else ""))
    if sizes:
        parts = ", ".join(f"`{d}`: {n:,}" for d, n in sizes.items())
        out.append(f"- size: {n_images:,} images" + (f" ({parts})" if len(sizes) > 1 else ""))
    else:
        out.append("- size: not recorded")
    if classes:
        out.append(f"- classes: {', '.join(classes)}")
    if image_size:
        out.append(f"- resized to {image_size} x {image_size}")
    out += ["", "### Training procedure", ""]
    out.append(f"- steps: {step:,}" + (f" of {int(total):,}" if total else "") + (f", batch size {batch}" if batch else ""))
    optim = recipe.get("optim") if isinstance(recipe.get("optim"), dict) else {}
    for group, cfg in optim.items():
        if isinstance(cfg, dict):
            out.append(f"- optimiser `{group}`: {_cell(_options(cfg) or 'defaults')}" if "name" not in cfg
                       else f"- optimiser `{group}`: `{cfg['name']}` ({_cell(_options(cfg))})")
    augment = recipe.get("augment") if isinstance(recipe.get("augment"), dict) else {}
    if augment:
        out.append(f"- augmentation: {', '.join(f'`{a}`' for a in augment)}")
    out.append(f"- seed: {recipe.get('seed', 0)}")
    out += ["", "<details><summary>The full recipe (recipe.toml)</summary>", "", "```toml", recipe_text.rstrip(), "```",
            "", "</details>", ""]
    out += ["### Speeds, sizes, times", ""]
    out.append(f"- training time: {_duration(wall)}")
    if rates:
        out.append(f"- throughput: {sum(rates) / len(rates):,.1f} images/s on average")
    out.append("")

    # --- evaluation
    out += ["## Evaluation", ""]
    if scores:
        out += ["| step | score | value | source |", "|---|---|---|---|"]
        for s in scores:
            for key, value in s["scores"].items():
                if isinstance(value, (int, float)) and not key.endswith(("_subsets", "_subset_size")):
                    out.append(f"| {s['step']} | {_cell(key)} | {_fmt(value)} | {_cell(s['source'])} |")
        out.append("")
        best = _json(run_dir / "checkpoints" / "best.json")
        if isinstance(best, dict) and "score" in best:
            out += [f"Best checkpoint: step {best.get('step')} ({best['score']} {_fmt(best.get('value'))}), "
                    "`checkpoints/best`.", ""]
    else:
        out += ["No scores yet: `ganforge eval RUN` computes them, and this card lists them when it is "
                "rewritten (`ganforge report RUN`).", ""]

    # --- samples
    out += ["## Samples", ""]
    if grids:
        last = grids[-1]
        out += [f"![samples at step {last.stem.split('-')[-1].lstrip('0') or '0'}]({SAMPLES_DIR}/{last.name})", ""]
    else:
        out += ["No sample grid yet.", ""]

    # --- hardware
    out += ["## Technical specifications", "", "### Compute infrastructure", ""]
    if hardware:
        device = hardware.get("device_name") or hardware.get("device", "?")
        out.append(f"- hardware: {device}" + (f" ({hardware['device']})" if hardware.get("device_name") and hardware.get("device") else ""))
        out.append(f"- processes: {hardware.get('processes', 1)}, threads per process: {hardware.get('threads', '?')}")
        out.append(f"- mixed precision: {hardware.get('mixed_precision', 'no')}")
        software = ", ".join(f"{k} {v}" for k, v in (("ganforge", hardware.get("ganforge")), ("torch", hardware.get("torch")))
                             if v)
        if software:
            out.append(f"- software: {software}")
    else:
        out.append("- hardware: not recorded (it is recorded at the end of training)")
    out += ["", f"<sub>Written by ganforge on {time.strftime('%Y-%m-%d %H:%M')}; "
            f"`ganforge report RUN` writes it again.</sub>", ""]
    return "\n".join(out)


def write_model_card(run_dir: str | Path) -> Path:
    """Write ``RUN/MODEL_CARD.md`` (atomically) and return its path."""
    run_dir = Path(run_dir)
    path = run_dir / MODEL_CARD_FILE
    write_atomic_text(path, model_card(run_dir))
    return path
