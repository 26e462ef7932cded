"""Evaluation protocols: the fixed settings under which published scores are taken.

A protocol names how many images are generated, which real images they are compared with, the
metrics and the feature network, so ``ganforge eval CHECKPOINT --protocol NAME`` gives a number
that can be set beside a paper's. The real set is a registered dataset (by name) with some of its
options fixed, e.g. the training split; when the checkpoint was trained on that dataset, the
recipe's own data options (its folder) are kept and only the protocol's are changed. Nothing here
knows about any dataset: plugins register the protocols (``register_protocols``), as data.

Options given on the command line beside ``--protocol`` still win; the result then records each
departure (``changed``), and the report says the scores are not the protocol's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ganforge.core.errors import DataError, GanforgeError, did_you_mean
from ganforge.core.registry import Registry


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol (see the module documentation)."""

    name: str
    summary: str
    num: int
    """Images generated (noise samples, seed 0 unless ``--seed``)."""
    dataset: str
    """The registered dataset the real images come from."""
    data_options: dict = field(default_factory=dict)
    """Options of that dataset fixed by the protocol (e.g. ``{"split": "train"}``)."""
    num_real: int | None = None
    """How many real images the protocol compares with (a check: a different count is reported)."""
    metrics: tuple[str, ...] = ("fid", "kid")
    extractor: str = "inception-v3-fid"
    """The feature network; the standard one, so the scores are FID and KID proper."""
    reference: str = ""
    """Where the protocol comes from, for the report."""

    def describe(self) -> str:
        real = f"{self.num_real:,} " if self.num_real else ""
        options = ", ".join(f"{k} = {v}" for k, v in self.data_options.items())
        return (f"{self.num:,} samples vs {real}{self.dataset} images ({options or 'as trained'}), "
                f"{', '.join(self.metrics)} with {self.extractor}")


def get_protocol(name: str, registry: Registry) -> Protocol:
    """The protocol a plugin registered as ``name`` (``register_protocols``); one clear error otherwise."""
    known = registry.list("protocol")
    if not registry.has("protocol", name):
        raise GanforgeError(f"no evaluation protocol '{name}'{did_you_mean(name, known)}",
                            hint=f"known protocols: {', '.join(known)}" if known else
                            "no installed plugin registers one (`ganforge plugins` lists what is loaded)")
    comp = registry.get("protocol", name)
    protocol = comp.build()
    if not isinstance(protocol, Protocol):
        from ganforge.core.errors import PluginCodeError

        raise PluginCodeError(f"{comp.label} built a {type(protocol).__name__}, not a ganforge.eval.protocols.Protocol")
    return protocol


@dataclass
class Plan:
    """What an evaluation under a protocol uses, after the command line's own options."""

    protocol: Protocol
    num: int
    metrics: list[str]
    extractor: str | None
    changed: list[str] = field(default_factory=list)
    """The departures from the protocol, each as ``option value (protocol: value)``."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.protocol.name, "summary": self.protocol.summary, "followed": not self.changed,
                "changed": list(self.changed)}


def plan(protocol: Protocol, *, num: int | None, metrics: list[str] | None, extractor: str | None,
         real_given: bool = False) -> Plan:
    """The protocol's settings, with any option the user gave instead (and recorded as a change)."""
    result = Plan(protocol, protocol.num, list(protocol.metrics), protocol.extractor)
    if num is not None and num != protocol.num:
        result.num = num
        result.changed.append(f"--num {num} (protocol: {protocol.num})")
    if metrics and list(metrics) != list(protocol.metrics):
        result.metrics = list(metrics)
        result.changed.append(f"--metric {', '.join(metrics)} (protocol: {', '.join(protocol.metrics)})")
    if extractor is not None and extractor != protocol.extractor:
        result.extractor = extractor
        result.changed.append(f"--extractor {extractor} (protocol: {protocol.extractor})")
    if real_given:
        result.changed.append(f"--real (protocol: {protocol.dataset} {protocol.data_options or ''})".rstrip())
    return result


def real_data_config(protocol: Protocol, registry: Registry, recipe: Any) -> tuple[str, Any]:
    """``(dataset name, its config)`` of the protocol's real images for a checkpoint's ``recipe``:
    the recipe's own data config when it trained on the protocol's dataset (its folder kept), else
    the dataset's defaults; the protocol's options set, and the image size of the recipe's data."""
    if not registry.has("dataset", protocol.dataset):
        raise DataError(f"protocol {protocol.name} compares with the dataset '{protocol.dataset}', which no plugin provides",
                        hint="`ganforge plugins` lists what is loaded; or pass --real FOLDER")
    spec = registry.get("dataset", protocol.dataset)
    base = recipe.data.config if recipe.data.name == spec.name else spec.config()
    names = {f.name for f in dataclasses.fields(base)}
    options = dict(protocol.data_options)
    size = getattr(recipe.data.config, "image_size", None)
    if size is not None and "image_size" in names:
        options.setdefault("image_size", size)
    unknown = sorted(set(options) - names)
    if unknown:
        raise DataError(f"protocol {protocol.name}: the dataset '{spec.name}' has no option {', '.join(unknown)}")
    return spec.name, dataclasses.replace(base, **options)


def count_note(protocol: Protocol, num_real: int) -> str | None:
    """A departure when the real set's size is not the protocol's (a partial copy, ``max_images``)."""
    if protocol.num_real is not None and num_real != protocol.num_real:
        return f"{num_real:,} real images (protocol: {protocol.num_real:,})"
    return None
