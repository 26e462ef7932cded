"""``ganforge export``: a checkpoint's inference networks as ONNX files, checked against PyTorch.

Family-agnostic: the algorithm says what to export (:meth:`ganforge.core.components.Algorithm.export_networks`,
a list of :class:`~ganforge.core.components.ExportSpec`); this module wraps each network (a class
fixed by ``--class``, the output clamped to ``[-1, 1]``), exports it with PyTorch's ONNX exporter,
writes what a user of the file needs into its metadata (recipe, family, inputs and outputs, value
range, class names), and runs it at once in onnxruntime on fixed inputs: the largest absolute
difference from PyTorch is reported, and an export above the tolerance is refused (the file is
not written).

``onnx``, ``onnxruntime`` and ``onnxscript`` (the exporter's own dependency) are the ``export``
extra: ``pip install 'ganforge[export]'``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from ganforge.core.components import ExportInput, ExportSpec
from ganforge.core.errors import ExportError

INSTALL_HINT = "pip install 'ganforge[export]'"
NEEDED = ("onnx", "onnxruntime", "onnxscript")
DEFAULT_TOLERANCE = 1e-3
VALUE_RANGE = (-1.0, 1.0)
PARITY_SEED = 0
META_PREFIX = "ganforge."


@dataclass
class Exported:
    """One file written by :func:`export_onnx`."""

    name: str
    path: Path
    max_abs_diff: float
    checked_batches: tuple[int, ...]
    inputs: list[dict]
    output: dict
    metadata: dict[str, str] = field(default_factory=dict)


def missing_packages() -> list[str]:
    return [m for m in NEEDED if importlib.util.find_spec(m) is None]


def require_onnx() -> None:
    """One line, naming the missing packages and the extra that installs them."""
    missing = missing_packages()
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        raise ExportError(f"ONNX export needs {names}, which {verb} not installed", hint=INSTALL_HINT)


class _Prepared(nn.Module):
    """The graph that is exported: the family's module with a fixed class (``--class``) filled in
    and its images clamped to the documented value range."""

    def __init__(self, spec: ExportSpec, fixed_label: int | None):
        super().__init__()
        self.net = spec.module
        self.fixed_label = fixed_label
        self.label_at = next((i for i, x in enumerate(spec.inputs) if x.kind == "label"), None)

    def forward(self, *inputs: Tensor) -> Tensor:
        args = list(inputs)
        if self.fixed_label is not None and self.label_at is not None:
            first = args[0]
            args.insert(self.label_at, torch.full((first.shape[0],), self.fixed_label, dtype=torch.long, device=first.device))
        out = self.net(*args)
        if isinstance(out, (tuple, list)):  # a network with multiple_outputs: its images come first
            out = out[0]
        return out.float().clamp(*VALUE_RANGE)


def fixed_inputs(inputs: tuple[ExportInput, ...], batch: int, seed: int = PARITY_SEED) -> list[Tensor]:
    """Inputs of each declared kind for ``batch`` items, the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for spec in inputs:
        shape = (batch, *spec.shape)
        if spec.kind == "noise":
            out.append(torch.randn(shape, generator=g))
        elif spec.kind == "label":
            out.append(torch.randint(0, max(1, spec.classes), shape, generator=g, dtype=torch.long))
        elif spec.kind == "image":
            out.append(torch.rand(shape, generator=g) * 2 - 1)
        else:
            raise ExportError(f"input '{spec.name}' has unknown kind '{spec.kind}'",
                              hint="an ExportInput kind is noise, label or image")
    return out


def _dtype(kind: str) -> str:
    return "int64" if kind == "label" else "float32"


def describe_inputs(inputs: tuple[ExportInput, ...], batch: int | None) -> list[dict]:
    first = "batch" if batch is None else batch
    return [{"name": x.name, "shape": [first, *x.shape], "dtype": _dtype(x.kind), "kind": x.kind,
             **({"classes": x.classes} if x.kind == "label" else {})} for x in inputs]


_OP = re.compile(r"\b(aten|prim|torchvision|quantized)(?:::|\.)([A-Za-z_][A-Za-z0-9_]*)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


_UNSUPPORTED = ("No ONNX function", "No decomposition", "not supported", "unsupported", "Unsupported")


def unsupported_operation(exc: BaseException) -> str | None:
    """The operation an error says has no ONNX translation (``aten::name``), or None."""
    for e in _chain(exc):
        text = str(e)
        m = _OP.search(text) if any(marker in text for marker in _UNSUPPORTED) else None
        if m:
            return f"{m.group(1)}::{m.group(2)}"
    return None


def failure_reason(exc: BaseException) -> str:
    """What went wrong, in one line: the operation an error names, else the first line of its
    innermost cause (the exporter wraps the error that says why in several others)."""
    op = unsupported_operation(exc)
    if op is not None:
        return f"the operation {op} is not supported"
    chain = _chain(exc)
    for e in reversed(chain):
        text = _ANSI.sub("", str(e)).strip()
        if text:
            return f"{type(e).__name__}: {text.splitlines()[0][:240]}"
    return type(chain[-1]).__name__


def _chain(exc: BaseException | None) -> list[BaseException]:
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _export_graph(module: nn.Module, examples: list[Tensor], specs: tuple[ExportInput, ...], output: str,
                  dynamic: bool, opset: int | None):
    """The ONNX ModelProto of ``module`` (PyTorch's exporter, quiet unless it fails)."""
    dynamic_shapes = None
    if dynamic:
        batch = torch.export.Dim("batch", min=1, max=1 << 16)
        dynamic_shapes = (tuple({0: batch} for _ in examples),)  # forward(*inputs): one entry, a tuple
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, tuple(examples), dynamo=True, input_names=[x.name for x in specs], output_names=[output],
            dynamic_shapes=dynamic_shapes, opset_version=opset, verbose=False, optimize=True, external_data=False,
        )
    return program.model_proto


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def check_parity(path: Path, module: nn.Module, specs: tuple[ExportInput, ...], output: str,
                 batches: tuple[int, ...]) -> float:
    """Run the file in onnxruntime and the module in PyTorch on the same fixed inputs; the largest
    absolute difference over ``batches``. A wrong output shape or a non-finite value is an error."""
    session = _session(path)
    worst = 0.0
    for batch in batches:
        inputs = fixed_inputs(specs, batch, PARITY_SEED + batch)
        with torch.no_grad():
            expected = module(*inputs).float()
        (got,) = session.run([output], {x.name: t.numpy() for x, t in zip(specs, inputs)})
        got = torch.from_numpy(got)
        if tuple(got.shape) != tuple(expected.shape):
            raise ExportError(f"the ONNX graph returns shape {list(got.shape)} for a batch of {batch}, PyTorch "
                              f"{list(expected.shape)}", hint="export with --batch 1 (a fixed batch size)")
        diff = (got.float() - expected).abs().max().item() if got.numel() else 0.0
        if diff != diff:  # NaN
            raise ExportError("the ONNX graph returns non-finite values where PyTorch does not")
        worst = max(worst, diff)
    return worst


def _metadata(loaded, spec: ExportSpec, inputs: list[dict], output: dict, class_name: str | None,
              diff: float | None, tolerance: float) -> dict[str, str]:
    from ganforge import __version__

    recipe = loaded.recipe
    classes = list(loaded.class_names())
    notes = dict(spec.notes)
    kind = "image-to-image" if any(x.kind == "image" for x in spec.inputs) else "noise-to-image"
    meta = {
        "producer": f"ganforge {__version__}",
        "recipe_name": recipe.name,
        "recipe": recipe.to_toml(),
        "family": recipe.algorithm.name,
        "generator": recipe.parts["generator"].name if "generator" in recipe.parts else "",
        "network": spec.name,
        "kind": kind,
        "step": str(loaded.step),
        "inputs": json.dumps(inputs),
        "outputs": json.dumps([output]),
        "value_range": json.dumps(list(VALUE_RANGE)),
        "pixels": "uint8 = round((x + 1) * 127.5), channels RGB",
        "class_names": json.dumps(classes),
        "image_size": str(loaded.data.image_size if loaded.data is not None and loaded.data.image_size else ""),
        "parity_tolerance": repr(tolerance),
    }
    if class_name is not None:
        meta["class"] = class_name
    if diff is not None:
        meta["parity_max_abs_diff"] = f"{diff:.3g}"
    if notes:
        meta["notes"] = json.dumps(notes)
    return {META_PREFIX + k: v for k, v in meta.items() if v != ""}


def read_metadata(path: Path | str) -> dict[str, str]:
    """The ``ganforge.*`` metadata of an exported file, without the prefix (needs ``onnx``)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key[len(META_PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(META_PREFIX)}


def _write(proto, path: Path, meta: dict[str, str], doc: str) -> None:
    import onnx

    kept = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith(META_PREFIX)]
    del proto.metadata_props[:]
    for key, value in kept:
        proto.metadata_props.add(key=key, value=value)
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = doc
    onnx.save_model(proto, str(path))


def output_paths(output: Path, names: list[str]) -> dict[str, Path]:
    """One name: ``output`` itself; several: ``STEM-NAME.onnx`` beside it."""
    if len(names) == 1:
        return {names[0]: output}
    return {n: output.with_name(f"{output.stem}-{n}{output.suffix}") for n in names}


def export_onnx(loaded, output: Path | str, *, batch: int | None = 1, class_index: int | None = None,
                only: str | None = None, tolerance: float = DEFAULT_TOLERANCE, opset: int | None = None,
                component=None) -> list[Exported]:
    """Export the networks ``loaded.algorithm.export_networks`` declares (one ``.onnx`` each).

    ``loaded`` is what :func:`ganforge.io.inference.load_for_inference` returns (on the CPU);
    ``batch``: a fixed batch size, or None for a dynamic one; ``class_index``: fix the class of a
    class-conditional generator (its ``labels`` input is then gone); ``only``: one network by name
    (a direction); ``component``: the algorithm's registry entry, to name it in errors."""
    from ganforge.core.registry import plugin_code

    require_onnx()
    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise ExportError(f"--output must name an .onnx file, got {output}", hint=f"e.g. --output {output.stem or 'model'}.onnx")
    if batch is not None and batch < 1:
        raise ExportError(f"--batch must be a positive number or 'dynamic', got {batch}")
    if not tolerance > 0:
        raise ExportError(f"--tolerance must be above 0, got {tolerance:g}")
    family = loaded.recipe.algorithm.name
    guard = plugin_code(component, "describing its networks for export") if component is not None else contextlib.nullcontext()
    with guard:
        specs = list(loaded.algorithm.export_networks(loaded.nets, loaded.capabilities, loaded.data))
    if not specs:
        raise ExportError(f"algorithm '{family}' declares no network to export")
    names = [s.name for s in specs]
    if only is not None:
        if only not in names:
            from ganforge.core.errors import did_you_mean

            raise ExportError(f"unknown network '{only}'{did_you_mean(only, names)}; this checkpoint exports: {', '.join(names)}")
        specs = [s for s in specs if s.name == only]
    if class_index is not None and not any(x.kind == "label" for s in specs for x in s.inputs):
        raise ExportError(f"{loaded.path}: its networks take no class label", hint="drop --class")
    class_name = loaded.class_names()[class_index] if class_index is not None else None
    paths = output_paths(output, [s.name for s in specs])
    output.parent.mkdir(parents=True, exist_ok=True)
    results, written = [], []  # every file is checked before any is put in place: all or none
    try:
        for spec in specs:
            results.append(_export_one(loaded, spec, paths[spec.name], class_index, class_name, batch, tolerance,
                                       opset, family, written))
        for tmp, path in written:
            os.replace(tmp, path)
    finally:
        for tmp, _ in written:
            if tmp.exists():
                tmp.unlink()
    return results


def _export_one(loaded, spec: ExportSpec, path: Path, class_index: int | None, class_name: str | None,
                batch: int | None, tolerance: float, opset: int | None, family: str, written: list) -> Exported:
    """Export, check and describe one network into a temporary file beside ``path`` (listed in ``written``)."""
    module = _Prepared(spec, class_index).eval()
    graph_inputs = tuple(x for x in spec.inputs if not (class_index is not None and x.kind == "label"))
    trace_batch = batch if batch is not None else 2
    examples = fixed_inputs(graph_inputs, trace_batch)
    try:
        with torch.no_grad():
            module(*examples)
    except Exception as exc:  # noqa: BLE001 - plugin code
        raise ExportError(f"'{spec.name}' of algorithm '{family}' fails on its declared inputs: {failure_reason(exc)}",
                          hint="a bug in the family's export_networks; run with --debug for the traceback") from exc
    try:
        proto = _export_graph(module, examples, graph_inputs, spec.output, batch is None, opset)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds
        raise ExportError(
            f"cannot export '{spec.name}' of algorithm '{family}' to ONNX: {failure_reason(exc)}",
            hint="run with --debug for the exporter's report; a family can override Algorithm.export_networks "
                 "to export an equivalent network") from exc
    batches = (trace_batch,) if batch is not None else (1, 3)
    inputs = describe_inputs(graph_inputs, batch)
    out_desc = {"name": spec.output, "shape": ["batch" if batch is None else batch, 3, "height", "width"],
                "dtype": "float32"}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    written.append((tmp, path))
    _write(proto, tmp, {}, "")
    diff = check_parity(tmp, module, graph_inputs, spec.output, batches)
    if diff > tolerance:
        raise ExportError(
            f"the ONNX export of '{spec.name}' differs from PyTorch by up to {diff:.3g} (tolerance {tolerance:g}); "
            "not written", hint="check the family's export_networks, or raise --tolerance if that difference is acceptable")
    with torch.no_grad():
        shape = list(module(*fixed_inputs(graph_inputs, 1)).shape)
    out_desc["shape"] = ["batch" if batch is None else batch, *shape[1:]]
    meta = _metadata(loaded, spec, inputs, out_desc, class_name, diff, tolerance)
    doc = (f"ganforge {loaded.recipe.name} ({family}, step {loaded.step}): {spec.name}, "
           f"{', '.join(x['name'] for x in inputs)} -> {spec.output} in [-1, 1]")
    _write(proto, tmp, meta, doc)
    return Exported(spec.name, path, diff, batches, inputs, out_desc, meta)
