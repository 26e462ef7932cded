"""Experiment trackers through Accelerate: ``ganforge train --log-with tensorboard`` (or ``wandb``,
``mlflow``) logs every metrics row as scalars and every progress grid as an image.

None is used by default and none is a dependency: ``pip install 'ganforge[tensorboard]'`` adds
TensorBoard. Logs go to ``RUN/logs/`` (``tensorboard --logdir RUN/logs``); W&B and MLflow use the
recipe's name as the project / experiment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ganforge.core.errors import GanforgeError

TRACKERS = {
    "tensorboard": ("is_tensorboard_available", "pip install 'ganforge[tensorboard]' (or: pip install tensorboard)"),
    "wandb": ("is_wandb_available", "pip install wandb"),
    "mlflow": ("is_mlflow_available", "pip install mlflow"),
}
LOGS_DIR = "logs"


def parse_trackers(values: Iterable[str] | None) -> list[str]:
    """Validated tracker names from ``--log-with`` values (repeatable and/or comma-separated)."""
    from accelerate import utils

    names: list[str] = []
    for value in values or ():
        for name in str(value).split(","):
            name = name.strip().lower()
            if name and name not in names:
                names.append(name)
    for name in names:
        if name not in TRACKERS:
            raise GanforgeError(f"unknown tracker '{name}' for --log-with",
                                hint="use " + ", ".join(TRACKERS) + " (several: --log-with tensorboard,wandb)")
        check, install = TRACKERS[name]
        if not getattr(utils, check)():
            raise GanforgeError(f"--log-with {name}: {name} is not installed", hint=install)
    return names


def accelerator_options(names: list[str] | None, run_dir: Path) -> dict:
    """Keyword arguments for ``Accelerator(...)``: nothing at all without trackers."""
    if not names:
        return {}
    return {"log_with": list(names), "project_dir": str(Path(run_dir) / LOGS_DIR)}


def _flat(data, prefix: str = "") -> dict:
    out = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        elif value is not None:
            out[name] = str(value)
    return out


def start(run) -> None:
    acc = run.accelerator
    if not getattr(acc, "log_with", None):
        return
    import tomllib

    config = _flat(tomllib.loads(run.recipe.to_toml()))
    acc.init_trackers(run.recipe.name or "ganforge", config=config,
                      init_kwargs={"wandb": {"name": Path(run.run_dir).name}})


def log(run, record: dict) -> None:
    acc = run.accelerator
    if getattr(acc, "log_with", None):
        acc.log({k: v for k, v in record.items() if k != "step"}, step=int(record["step"]))


def log_grid(run, path: Path) -> None:
    """Send a saved progress grid to every tracker that takes images."""
    acc = run.accelerator
    if not getattr(acc, "log_with", None):
        return
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    for tracker in acc.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images({"progress": image[None]}, step=run.step, dataformats="NHWC")
        elif tracker.name == "wandb":
            tracker.log_images({"progress": [image]}, step=run.step)
        elif tracker.name == "mlflow":
            tracker.log_artifact(str(path), "samples")
