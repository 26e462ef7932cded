"""`ganforge train`: train a recipe, or resume a run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ganforge.cli import common


def train_command(
    recipe: Annotated[Optional[str], typer.Option("--recipe", "-r", help="A registered recipe name or a path to a .toml file.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="The dataset folder (for unpaired data: the folder holding both domains; for labelled data: the folder whose sub-folders are the classes).")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Total training steps of the run (overrides train.steps).")] = None,
    overrides: common.Overrides = None,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="The run directory (default: runs/RECIPE-TIMESTAMP).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run in this directory from its latest checkpoint.")] = None,
    mixed_precision: Annotated[Optional[str], typer.Option("--mixed-precision", help="no, bf16, fp16 or auto (bf16 on CPUs with native bf16, else fp32; overrides train.mixed_precision).")] = None,
    stop_at: Annotated[Optional[int], typer.Option("--stop-at", help="Stop with a checkpoint after this step, as if interrupted; continue later with --resume.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    log_with: Annotated[Optional[list[str]], typer.Option("--log-with", help="Also log to an experiment tracker: tensorboard, wandb or mlflow (repeatable; logs in RUN/logs).")] = None,
):
    """Train a recipe (or resume a run). Multi-process: torchrun --nproc_per_node N -m ganforge train ..."""
    from ganforge.core.errors import GanforgeError, RecipeError
    from ganforge.core.recipes import load_recipe
    from ganforge.train.trackers import parse_trackers
    from ganforge.io.runfiles import RECIPE_FILE
    from ganforge.train.loop import train

    with common.user_errors():
        trackers = parse_trackers(log_with)
        registry = common.registry()
        sets = list(overrides or [])
        if steps is not None:
            if steps <= 0:
                raise RecipeError(f"--steps must be a positive integer, got {steps}")
            sets.append(f"train.steps={steps}")
        if mixed_precision is not None:
            if mixed_precision not in ("no", "bf16", "fp16", "auto"):
                raise RecipeError(f"--mixed-precision must be no, bf16, fp16 or auto, got '{mixed_precision}'")
            sets.append(f'train.mixed_precision="{mixed_precision}"')
        if stop_at is not None and stop_at <= 0:
            raise RecipeError(f"--stop-at must be a positive step number, got {stop_at}")
        if resume is not None:
            if recipe is not None or data is not None or output_dir is not None:
                raise RecipeError("--resume continues a run with its own recipe, data and directory; drop --recipe/--data/--output-dir")
            recipe_file = resume / RECIPE_FILE
            if not recipe_file.is_file():
                raise GanforgeError(f"{resume} is not a ganforge run directory (no {RECIPE_FILE})",
                                    hint="pass the folder a previous `ganforge train` wrote")
            resolved = load_recipe(str(recipe_file), registry, sets)  # the run's own recipe, with any --set
            train(resolved, registry, resume, resume=True, stop_at=stop_at, console=common.err, progress=progress, log_with=trackers)
            return
        if recipe is None:
            raise RecipeError("nothing to train: pass --recipe NAME (see `ganforge recipes`) or --resume RUN_DIR")
        if data is not None:
            sets.append(f"data.path={json.dumps(str(data.expanduser().resolve()))}")
            sets = _data_resets(registry, recipe, sets) + sets
        resolved = load_recipe(recipe, registry, sets)
        run_dir = output_dir or Path("runs") / f"{resolved.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        train(resolved, registry, run_dir, stop_at=stop_at, console=common.err, progress=progress, log_with=trackers)


def _data_resets(registry, recipe: str, sets: list[str]) -> list[str]:
    """``--set`` overrides that return the dataset options its config lists in
    ``reset_by_data_option`` to their defaults: they pick parts of the recipe's own data root (a
    labelled recipe's list of class folders), while --data names the dataset itself. An option the
    user sets with --set keeps the user's value."""
    import dataclasses

    import tomli_w

    from ganforge.core.recipes import _resolve_chain, apply_overrides, parse_override

    data, origins = _resolve_chain(recipe, registry, None, [])
    spec = apply_overrides(data, origins, sets).get("data")
    name = spec.get("name") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not registry.has("dataset", name):
        return []  # load_recipe reports it
    config = registry.get("dataset", name).config
    resets = getattr(config, "reset_by_data_option", ()) if config is not None else ()
    given = {".".join(parse_override(item)[0]) for item in sets}
    defaults = {f.name: f for f in dataclasses.fields(config)} if config is not None else {}
    out = []
    for option in resets:
        f = defaults.get(option)
        if f is None or f"data.{option}" in given or f.default in (dataclasses.MISSING, None):
            continue
        value = tomli_w.dumps({"v": list(f.default) if isinstance(f.default, tuple) else f.default}).partition("=")[2].strip()
        out.append(f"data.{option}={value}")
    return out
