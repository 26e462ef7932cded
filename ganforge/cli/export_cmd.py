"""`ganforge export`: a checkpoint's inference networks as ONNX files, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ganforge.cli import common


def _batch(value: str) -> int | None:
    from ganforge.core.errors import GanforgeError

    text = value.strip().lower()
    if text == "dynamic":
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise GanforgeError(f"--batch must be a positive number or 'dynamic', got '{value}'",
                        hint="e.g. --batch 1, or --batch dynamic for any batch size")


def _shape(shape) -> str:
    return "[" + ", ".join(str(n) for n in shape) + "]"


def export_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="A checkpoint file, its folder, or a run folder (latest checkpoint).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write; a model with several networks (translation directions) writes OUTPUT-NAME.onnx for each.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="The file format: onnx.")] = "onnx",
    batch: Annotated[str, typer.Option("--batch", help="Batch size the graph takes: a number, or 'dynamic' for any.")] = "1",
    class_name: Annotated[Optional[str], typer.Option("--class", help="Class-conditional models: fix this class (a name the checkpoint lists); the graph then takes noise only.")] = None,
    direction: Annotated[Optional[str], typer.Option("--direction", "-d", help="Translation models: export only this direction (e.g. a2b), to OUTPUT itself.")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest absolute difference from PyTorch (on images in [-1, 1]) that the check accepts.")] = 1e-3,
    opset: Annotated[Optional[int], typer.Option("--opset", help="ONNX opset version (default: the exporter's).")] = None,
):
    """Export the inference network(s) to ONNX, checked in onnxruntime against PyTorch.

    The file's metadata holds the recipe, family, inputs, value range and class names.
    Needs: pip install 'ganforge\\[export]'."""
    from ganforge.core.errors import GanforgeError

    with common.user_errors():
        if fmt.strip().lower() != "onnx":
            raise GanforgeError(f"unknown --format '{fmt}'; ganforge exports: onnx", hint="--format onnx")
        size = _batch(batch)
        from ganforge.io.export import export_onnx, require_onnx
        from ganforge.io.inference import load_for_inference

        require_onnx()  # before loading anything: one line that says how to install it
        registry = common.registry()
        loaded = load_for_inference(checkpoint, registry)
        class_index = loaded.class_index(class_name) if class_name is not None else None
        results = export_onnx(loaded, output, batch=size, class_index=class_index, only=direction, tolerance=tolerance,
                              opset=opset, component=registry.get("algorithm", loaded.recipe.algorithm.name))
        for r in results:
            ins = ", ".join(f"{i['name']} {i['dtype']} {_shape(i['shape'])}" for i in r.inputs)
            batches = " and ".join(str(b) for b in r.checked_batches)
            common.out.print(f"wrote {r.path} ({r.name}: {ins} -> {r.output['name']} {_shape(r.output['shape'])} in [-1, 1])")
            common.out.print(f"  checked in onnxruntime against PyTorch on batches of {batches}: "
                             f"max abs difference {r.max_abs_diff:.2g} (tolerance {tolerance:g})")
