"""Checkpoints: safetensors files that rebuild themselves through the registry.

A checkpoint is a folder ``RUN/checkpoints/step-00000400/`` holding

- ``model.safetensors``: the inference networks (``role.param`` keys). Its header metadata carries
  the format version, the resolved recipe (TOML) and, per network, the registered component name
  and its config, so `ganforge sample` needs nothing else. Names are only ever looked up in the
  registry; nothing in a file is imported or unpickled.
- ``state.safetensors``: everything else a resume needs (training networks, optimiser moments,
  RNG states of every process, data order, algorithm state), again tensors plus JSON metadata.

Folders are written under a temporary name and renamed into place, and ``RUN/checkpoints/latest``
moves only after that, so a kill at any moment leaves either the old or the new checkpoint,
never a half-written one that looks valid.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ganforge.core.errors import CheckpointError
from ganforge.io.runfiles import write_atomic_text  # noqa: F401 - used here and re-exported

FORMAT = "ganforge-checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
LATEST = "latest"
BEST = "best"  # the pointer to the best-scored checkpoint (see update_best); never pruned
BEST_RECORD = "best.json"  # its score, beside it
CHECKPOINTS = "checkpoints"


# --- writing -------------------------------------------------------------------------------------
def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage; clone makes every tensor its own.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def write_checkpoint(
    checkpoints_dir: Path,
    step: int,
    model_tensors: dict[str, torch.Tensor],
    model_meta: dict[str, Any],
    state_tensors: dict[str, torch.Tensor],
    state_meta: dict[str, Any],
    keep: int,
) -> Path:
    """Write one checkpoint folder atomically, move ``latest`` to it, prune to the newest ``keep``."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / f"step-{step:08d}"
    tmp = checkpoints_dir / f".step-{step:08d}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "step": str(step)}
    save_file(_contiguous(model_tensors), str(tmp / MODEL_FILE), metadata={**meta, **_json_meta(model_meta)})
    save_file(_contiguous(state_tensors), str(tmp / STATE_FILE), metadata={**meta, **_json_meta(state_meta)})
    for name in (MODEL_FILE, STATE_FILE):
        with open(tmp / name, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():  # re-writing the same step (e.g. after a rollback)
        old = checkpoints_dir / f".step-{step:08d}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    write_atomic_text(checkpoints_dir / LATEST, final.name + "\n")
    prune(checkpoints_dir, keep)
    return final


def _json_meta(meta: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    if not checkpoints_dir.is_dir():
        return []
    found = [p for p in checkpoints_dir.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / MODEL_FILE).exists()]
    return sorted(found, key=lambda p: p.name)


def prune(checkpoints_dir: Path, keep: int) -> None:
    kept = {p.resolve() for p in (read_latest(checkpoints_dir), read_pointer(checkpoints_dir, BEST)) if p is not None}
    for path in list_checkpoints(checkpoints_dir)[:-keep] if keep > 0 else []:
        if path.resolve() in kept:
            continue
        shutil.rmtree(path, ignore_errors=True)
    for stale in checkpoints_dir.glob(".step-*"):  # leftovers of a process killed mid-write
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def read_pointer(checkpoints_dir: Path, name: str) -> Path | None:
    """The checkpoint folder a pointer file (``latest``, ``best``) names, if it exists."""
    pointer = Path(checkpoints_dir) / name
    if pointer.is_file():
        target = pointer.parent / pointer.read_text(encoding="utf-8").strip()
        if (target / MODEL_FILE).is_file():
            return target
    return None


def read_latest(checkpoints_dir: Path) -> Path | None:
    target = read_pointer(checkpoints_dir, LATEST)
    if target is not None:
        return target
    found = list_checkpoints(checkpoints_dir)
    return found[-1] if found else None


# --- reading -------------------------------------------------------------------------------------
def find_checkpoint_dir(path: Path) -> Path:
    """Accept a model file, a checkpoint folder, a run's checkpoints folder, or a run folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}", hint="pass a .safetensors file, a checkpoint folder or a run folder")
    if path.is_file() and path.name in (LATEST, BEST) and read_pointer(path.parent, path.name) is not None:
        return read_pointer(path.parent, path.name)  # RUN/checkpoints/best or .../latest
    if path.is_file():
        return path.parent
    if (path / MODEL_FILE).is_file():
        return path
    for candidate in (path, path / CHECKPOINTS):
        latest = read_latest(candidate) if candidate.is_dir() else None
        if latest is not None:
            return latest
    raise CheckpointError(
        f"no checkpoint in {path}",
        hint="a run folder holds checkpoints/step-*/model.safetensors once training has saved one",
    )


def find_model_file(path: Path) -> Path:
    path = Path(path).expanduser()
    if path.is_file() and path.name not in (LATEST, BEST):  # a pointer file names a checkpoint folder
        return path
    return find_checkpoint_dir(path) / MODEL_FILE


@dataclass
class LoadedFile:
    path: Path
    tensors: dict[str, torch.Tensor]
    meta: dict[str, str]

    def json(self, key: str) -> Any:
        if key not in self.meta:
            raise CheckpointError(f"{self.path} has no '{key}' in its metadata; it was not written by this version of ganforge")
        try:
            return json.loads(self.meta[key])
        except json.JSONDecodeError:
            raise CheckpointError(f"{self.path}: metadata '{key}' is not valid JSON; the file is damaged") from None


def read_safetensors(path: Path, *, expect: str = "checkpoint") -> LoadedFile:
    """Read a ganforge safetensors file, turning every way it can be broken into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{expect} file not found: {path}")
    if path.suffix != ".safetensors":
        raise CheckpointError(
            f"{path} is not a .safetensors file; ganforge only loads safetensors checkpoints",
            hint="pickled .pt/.pth files are never loaded, since unpickling can run code",
        )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path} is damaged or not a safetensors file ({reason})",
            hint="it may be truncated by an interrupted copy; use another checkpoint of the run",
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a ganforge checkpoint (no '{FORMAT}' metadata)")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise CheckpointError(f"{path} has an unreadable format version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version}, newer than this ganforge understands ({FORMAT_VERSION})",
            hint="upgrade ganforge to load it",
        )
    if version < 1:
        raise CheckpointError(f"{path} uses checkpoint format {version}, which no released ganforge wrote")
    return LoadedFile(path, tensors, meta)


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_module_state(module: torch.nn.Module, state: dict[str, torch.Tensor], label: str, path: Path) -> None:
    """load_state_dict with an error that says which network and which shapes disagree."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            ([f"missing {', '.join(missing[:3])}"] if missing else [])
            + ([f"unexpected {', '.join(unexpected[:3])}"] if unexpected else [])
            + ([f"shape mismatch {', '.join(wrong[:3])}"] if wrong else [])
        )
        raise CheckpointError(
            f"{path}: the weights of '{label}' do not fit the network its metadata describes ({details})",
            hint="the file was edited or comes from another recipe",
        )
    module.load_state_dict(state, strict=True)


# --- the best checkpoint so far (recipes that score during training, `ganforge eval --all`) -------
def read_best(checkpoints_dir: Path) -> dict | None:
    path = Path(checkpoints_dir) / BEST_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "checkpoint" in record else None


def update_best(checkpoints_dir: Path, checkpoint: str, step: int, key: str, value: float, higher_is_better: bool,
                *, replace: bool = False) -> bool:
    """Point ``checkpoints/best`` at ``checkpoint`` if ``value`` beats the record (or ``replace``); True if it did."""
    if not math.isfinite(value):
        return False
    checkpoints_dir = Path(checkpoints_dir)
    record = read_best(checkpoints_dir)
    if not replace and record is not None and record.get("score") == key and (checkpoints_dir / record["checkpoint"]).is_dir():
        old = float(record["value"])
        if (value <= old) if higher_is_better else (value >= old):
            return False
    new = {"checkpoint": checkpoint, "step": step, "score": key, "value": value, "higher_is_better": higher_is_better}
    write_atomic_text(checkpoints_dir / BEST_RECORD, json.dumps(new, indent=2) + "\n")
    write_atomic_text(checkpoints_dir / BEST, checkpoint + "\n")
    return True
