"""Rebuilding networks from a checkpoint file alone, through the registry and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ganforge.io.checkpoint import find_model_file, load_module_state, read_safetensors, split_prefix
from ganforge.core.config import build_dataclass
from ganforge.core.components import Capabilities
from ganforge.core.errors import CheckpointError, GanforgeError, did_you_mean
from ganforge.core.registry import plugin_code
from ganforge.data.items import DatasetInfo
from ganforge.core.recipes import Recipe, recipe_from_toml
from ganforge.core.registry import Registry


@dataclass
class Loaded:
    path: Path
    step: int
    algorithm: object
    nets: dict[str, nn.Module]
    recipe: Recipe
    data: DatasetInfo | None = None  # None for checkpoints written before datasets were described
    capabilities: Capabilities = field(default_factory=Capabilities)

    def class_names(self) -> tuple[str, ...]:
        return self.data.class_names() if self.data is not None else ()

    def class_index(self, name: str) -> int:
        """The index of a class by name (or by number), with an error listing the known classes."""
        names = self.class_names()
        if not self.capabilities.classes or not names:
            raise GanforgeError(
                f"{self.path} cannot sample by class: its model was not trained with class labels",
                hint="drop --class",
            )
        if name in names:
            return names.index(name)
        if name.isdigit() and int(name) < len(names):
            return int(name)
        raise GanforgeError(
            f"unknown class '{name}'{did_you_mean(name, names)}; this checkpoint knows: {', '.join(names)}",
            hint="pass one of those names (or its number, from 0)",
        )


def _component(registry: Registry, kind: str, name: str, entry: dict, path: Path):
    if not registry.has(kind, name):
        provider = entry.get("plugin") or "?"
        dist = entry.get("distribution") or provider
        raise CheckpointError(
            f"{path} needs {kind} '{name}', which no installed plugin provides (it came from plugin "
            f"'{provider}' of distribution '{dist}')",
            hint=f"install that plugin (e.g. pip install {dist}) and check `ganforge plugins`",
        )
    return registry.get(kind, name)


def load_for_inference(path: Path | str, registry: Registry, device: str | torch.device = "cpu") -> Loaded:
    file = find_model_file(Path(path))
    loaded = read_safetensors(file)
    algo_meta = loaded.json("algorithm")
    networks = loaded.json("networks")
    if not isinstance(networks, dict) or not isinstance(algo_meta, dict) or "name" not in algo_meta:
        raise CheckpointError(f"{file}: metadata does not describe networks and an algorithm; the file is damaged")
    algo_comp = _component(registry, "algorithm", algo_meta["name"], algo_meta, file)
    try:
        algo_cfg = build_dataclass(algo_comp.config, algo_meta.get("config", {}), section="algorithm") if algo_comp.config else None
    except GanforgeError as exc:
        raise CheckpointError(f"{file}: its algorithm settings do not fit the installed plugin ({exc.message})") from None
    algorithm = algo_comp.build(algo_cfg)
    nets: dict[str, nn.Module] = {}
    for role, entry in networks.items():
        comp = _component(registry, entry.get("kind", "?"), entry.get("name", "?"), entry, file)
        try:
            config = build_dataclass(comp.config, entry.get("config", {}), section=role) if comp.config else None
        except GanforgeError as exc:
            raise CheckpointError(f"{file}: the stored settings of '{role}' do not fit the installed plugin ({exc.message})") from None
        net = comp.build(config)
        state = split_prefix(loaded.tensors, role)
        if not state:
            raise CheckpointError(f"{file}: no weights for '{role}' although its metadata lists it; the file is damaged")
        load_module_state(net, state, role, file)
        nets[role] = net.to(device).eval()
    try:
        recipe = recipe_from_toml(loaded.meta.get("recipe", ""), registry, label=str(file))
    except GanforgeError as exc:
        raise CheckpointError(f"{file}: its recipe no longer resolves ({exc.message})") from None
    data = DatasetInfo.from_json(loaded.json("dataset")) if "dataset" in loaded.meta else None
    with plugin_code(algo_comp, "declaring its capabilities"):
        capabilities = algorithm.capabilities(data)
    return Loaded(path=file, step=int(loaded.meta.get("step", 0)), algorithm=algorithm, nets=nets, recipe=recipe,
                  data=data, capabilities=capabilities)
