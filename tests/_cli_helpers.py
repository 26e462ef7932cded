"""Shared helpers for the CLI / training tests: tiny settings, running the CLI, reading runs."""

from __future__ import annotations

import json
import os
import sys
import subprocess
from pathlib import Path

from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("GANFORGE_DATA") or (REPO.parent / "shared" / "data")).resolve()

# Few steps, tiny batches, one thread: every training in these tests takes seconds on a CPU.
QUIET = ["--no-progress", "--set", "train.threads=1"]
SHAPES_TINY = [*QUIET, "--set", "train.batch_size=4", "--set", "data.num_images=64", "--set", "log.every=1",
               "--set", "log.num_samples=16"]
CATS_TINY = [*QUIET, "--set", "train.batch_size=4", "--set", "log.every=1", "--set", "log.num_samples=16"]
CYCLE_TINY = [*QUIET, "--set", "train.batch_size=2", "--set", "generator.width=8", "--set", "discriminator.width=8",
              "--set", "log.every=1", "--set", "log.num_samples=12"]


def cli_env(**extra: str) -> dict[str, str]:
    return {"GANFORGE_DATA": str(DATA), "OMP_NUM_THREADS": "1", **extra}


def run_cli(*args, env: dict | None = None):
    """Run `ganforge ARGS` in-process; returns click's Result (stdout, stderr, output, exit_code)."""
    from ganforge.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={**cli_env(), **(env or {})})


def ok(result) -> None:
    """Assert a CLI call succeeded, showing its output (and any exception) when it did not."""
    if result.exit_code != 0:
        exc = result.exception
        detail = ""
        if exc is not None and not isinstance(exc, SystemExit):
            import traceback

            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise AssertionError(f"exit {result.exit_code}\n{result.output}\n{detail}")


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(cli_env(**extra))
    env.pop("GANFORGE_DEBUG", None)
    return env


def run_module(*args, timeout: float = 180, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m ganforge ARGS` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "ganforge", *map(str, args)], env=subprocess_env(), cwd=cwd,
        capture_output=True, text=True, timeout=timeout,
    )


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines() if line.strip()]


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_tensors(a: Path, b: Path) -> None:
    """Every tensor of two safetensors files is bit-identical (same keys, dtypes, shapes, values)."""
    import torch

    ta, tb = tensors(a), tensors(b)
    assert sorted(ta) == sorted(tb), f"different keys: {sorted(set(ta) ^ set(tb))[:5]}"
    diff = [k for k in ta if ta[k].dtype != tb[k].dtype or ta[k].shape != tb[k].shape or not torch.equal(ta[k], tb[k])]
    assert not diff, f"{len(diff)} of {len(ta)} tensors differ between {a} and {b}, e.g. {diff[:5]}"


def image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return img.size


def pixels(path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).copy()


def one_error_line(result) -> str:
    """Assert a clean user error: non-zero exit, exactly one 'error:' line, no traceback. Returns the output."""
    out = result.output
    assert result.exit_code != 0, f"expected a failure, got exit 0:\n{out}"
    assert isinstance(result.exception, SystemExit), f"uncaught {type(result.exception).__name__}: {result.exception}\n{out}"
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, f"expected one 'error:' line:\n{out}"
    return out
