"""Items with fields: what a training batch is and what the core knows of a run's data.

A dataset's items are image tensors or dicts of named fields (an image, a class label, a paired
target image, ...); :class:`Batch` carries them to an algorithm, :class:`DatasetInfo` describes them
and is stored in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import Tensor

from ganforge.core.errors import DataError

FIELD_KINDS = ("image", "label", "tensor")
"""``image``: float ``[B, 3, H, W]`` in [-1, 1] (real-stage augmentation applies, identically for
every image field of an item); ``label``: ``int64 [B]`` class indices; ``tensor``: anything else,
passed through untouched."""


class Batch(dict):
    """A training batch: ``batch[domain]`` is that domain's images ``[B, 3, H, W]``; the other
    fields of the same items (a class label, a paired target image, ...) are in
    ``batch.fields(domain)``, row for row with the images."""

    def __init__(self, fields: dict[str, dict[str, Tensor]] | None = None):
        fields = fields or {}
        super().__init__({domain: f["image"] for domain, f in fields.items()})
        self._fields = fields

    def fields(self, domain: str) -> dict[str, Tensor]:
        """Every field of ``domain``'s items (``image`` included)."""
        if domain not in self._fields:
            raise KeyError(f"this batch has no domain '{domain}' (it has: {', '.join(self._fields) or 'none'})")
        return self._fields[domain]

    def field(self, domain: str, name: str) -> Tensor:
        """One field of ``domain``'s items, e.g. ``batch.field("images", "label")``."""
        fields = self.fields(domain)
        if name not in fields:
            raise KeyError(f"domain '{domain}' items have no field '{name}' (they have: {', '.join(fields)})")
        return fields[name]


@dataclass(frozen=True)
class DomainInfo:
    size: int
    fields: dict[str, str] = field(default_factory=lambda: {"image": "image"})
    class_names: tuple[str, ...] | None = None
    source: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What the core knows of a run's data; stored in every checkpoint."""

    name: str
    domains: dict[str, DomainInfo]
    image_size: int | None = None

    def class_names(self, domain: str | None = None) -> tuple[str, ...]:
        """The class names of ``domain`` (default: the first domain that has classes); () if none."""
        for d, info in self.domains.items():
            if (domain is None or d == domain) and info.class_names:
                return info.class_names
        return ()

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "image_size": self.image_size,
            "domains": {
                d: {"size": i.size, "fields": dict(i.fields), "class_names": list(i.class_names) if i.class_names else None,
                    "source": i.source}
                for d, i in self.domains.items()
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> DatasetInfo | None:
        if not isinstance(data, dict) or not isinstance(data.get("domains"), dict):
            return None
        domains = {}
        for d, i in data["domains"].items():
            names = i.get("class_names")
            domains[d] = DomainInfo(
                size=int(i.get("size", 0)), fields=dict(i.get("fields") or {"image": "image"}),
                class_names=tuple(names) if names else None, source=i.get("source"),
            )
        size = data.get("image_size")
        return cls(name=str(data.get("name", "")), domains=domains, image_size=int(size) if size else None)


# --- reading items with fields -------------------------------------------------------------------
def dataset_fields(dataset: Any) -> dict[str, str]:
    """The fields a dataset's items carry: its ``fields`` attribute, else inferred from item 0."""
    declared = getattr(dataset, "fields", None)
    if declared is not None:
        fields = dict(declared)
    else:
        item = dataset[0]
        if isinstance(item, Tensor):
            fields = {"image": "image"}
        elif isinstance(item, Mapping):
            fields = {k: ("image" if k == "image" else "label" if k == "label" else "tensor") for k in item}
        else:
            raise DataError(f"dataset items must be image tensors or dicts of fields, got {type(item).__name__}")
    if "image" not in fields:
        raise DataError(f"dataset items must have an 'image' field (they declare: {', '.join(fields) or 'none'})")
    bad = {k: v for k, v in fields.items() if v not in FIELD_KINDS}
    if bad:
        name, kind = next(iter(bad.items()))
        raise DataError(f"dataset field '{name}' has unknown kind '{kind}' (known: {', '.join(FIELD_KINDS)})")
    return fields


def fetch_fields(dataset: Any, indices: Tensor) -> dict[str, Tensor]:
    """Every field of the items at ``indices``, batched: ``get_fields`` when the dataset has it,
    else ``get_batch`` (images only), else item by item."""
    get_fields = getattr(dataset, "get_fields", None)
    if get_fields is not None:
        return dict(get_fields(indices))
    if getattr(dataset, "fields", None) in (None, {"image": "image"}):
        get_batch = getattr(dataset, "get_batch", None)
        if get_batch is not None:
            return {"image": get_batch(indices)}
    items = [dataset[int(i)] for i in indices]
    if isinstance(items[0], Tensor):
        return {"image": torch.stack(items)}
    out = {}
    for key in items[0]:
        values = [item[key] for item in items]
        out[key] = torch.stack(values) if isinstance(values[0], Tensor) else torch.as_tensor(values)
    return out


def describe_dataset(name: str, domains: Mapping[str, Any], image_size: int | None) -> DatasetInfo:
    infos = {}
    for d, ds in domains.items():
        names = getattr(ds, "class_names", None)
        infos[d] = DomainInfo(
            size=len(ds), fields=dataset_fields(ds), class_names=tuple(names) if names else None,
            source=getattr(ds, "source", None),
        )
    return DatasetInfo(name=name, domains=infos, image_size=image_size)
