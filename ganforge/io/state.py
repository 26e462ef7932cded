"""A training run's state on disk: :func:`save_training_state` and :func:`restore_training_state`.

A training checkpoint is two safetensors files (see :mod:`ganforge.io.checkpoint`):

- ``model.safetensors``: the inference networks (``eval_networks``) with the recipe, dataset
  description and each network's registered name and config: all ``sample`` needs.
- ``state.safetensors``: everything else a resume needs to continue bit for bit: the trained
  networks, optimiser state, the algorithm's ``state_dict`` and the state of augmentations and losses
  (per process), data order, every random generator (per process), the learning-rate scale and the
  rollback count.

Both functions take the trainer's run object and are each other's inverse: keep them side by side.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge import __version__
from ganforge.core.config import config_to_dict
from ganforge.core.errors import CheckpointError, PluginCodeError
from ganforge.io.checkpoint import (
    CHECKPOINTS,
    STATE_FILE,
    load_module_state,
    read_safetensors,
    split_prefix,
    write_checkpoint,
)


def _rng_state() -> dict:
    state = {
        "python": _jsonable(random.getstate()),
        "numpy": _jsonable(np.random.get_state()),
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state

def _set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.array(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])

def _per_process(run, value: Any) -> list:
    if run.world == 1:
        return [value]
    from accelerate.utils import gather_object

    return gather_object([value])

def net_entries(run, nets: dict[str, nn.Module]) -> dict[str, dict]:
    """Checkpoint metadata for each stored network: registered name and config."""
    algo = run.algorithm
    entries = {}
    for role, module in nets.items():
        base = role if role in algo.roles else getattr(algo, "derived", {}).get(role)
        if base not in algo.roles:
            raise PluginCodeError(
                f"{run.algorithm_component.label} stores a network '{role}' for inference that is neither one of "
                f"its roles ({', '.join(algo.roles)}) nor declared in `derived`",
                hint="declare derived networks, e.g. derived = {'generator_ema': 'generator'}",
            )
        part = run.recipe.parts[algo.roles[base]]
        comp = run.registry.get(part.kind, part.name)
        entries[role] = {
            "kind": part.kind, "name": part.name, "config": config_to_dict(part.config),
            "plugin": comp.plugin, "distribution": comp.distribution or "",
        }
    return entries

def save_training_state(run) -> Path | None:
    """Write a checkpoint of everything the run needs to continue exactly; returns its folder on
    the main process (None on the others). Every process must call it."""
    sampler_states = _per_process(run, {d: s.state() for d, s in run.samplers.items()})
    rng_states = _per_process(run, _rng_state())
    algo_states = _per_process(run, {k: v.cpu() for k, v in run.algorithm.state_dict().items()})
    part_states = _per_process(run, {
        f"{prefix}.{k}": v.detach().cpu() for prefix, part in run.stateful_parts().items()
        for k, v in part.state_dict().items() if torch.is_tensor(v)
    })
    if not run.is_main:
        run.accelerator.wait_for_everyone()
        return None
    eval_nets = run.algorithm_call("eval_networks")
    model_tensors = {f"{role}.{k}": v for role, m in eval_nets.items() for k, v in m.state_dict().items()}
    model_meta = {
        "ganforge_version": __version__,
        "algorithm": {"name": run.recipe.algorithm.name, "config": config_to_dict(run.recipe.algorithm.config)},
        "networks": net_entries(run, eval_nets),
        "dataset": run.data_info.to_json(),
        "recipe": run.recipe.to_toml(),
    }
    state_tensors = {f"net.{role}.{k}": v for role in run.nets for k, v in run.unwrap(role).state_dict().items()}
    optim_meta = {}
    for group, opt in run.optimizers.items():
        sd = opt.state_dict()
        optim_meta[group] = sd["param_groups"]
        for idx, pstate in sd["state"].items():
            for key, value in pstate.items():
                if value is None:  # e.g. SGD's momentum buffer without momentum
                    continue
                t = value if torch.is_tensor(value) else torch.tensor(value)
                state_tensors[f"optim.{group}.{idx}.{key}"] = t
    for rank, algo_state in enumerate(algo_states):  # per process: e.g. each has its own image pool
        for key, value in algo_state.items():
            state_tensors[f"algo.{rank}.{key}"] = value
    for rank, part_state in enumerate(part_states):  # ADA's probability, LeCam's averages, ...
        for key, value in part_state.items():
            state_tensors[f"parts.{rank}.{key}"] = value
    state_meta = {
        "optim_param_groups": optim_meta,
        "samplers": sampler_states,
        "rng": rng_states,
        "lr_scale": run.lr.scale,
        "rollbacks": run.rollbacks,
        "world_size": run.world,
        "mixed_precision": run.precision,
    }
    path = write_checkpoint(
        run.run_dir / CHECKPOINTS, run.step, model_tensors, model_meta, state_tensors, state_meta,
        keep=run.recipe.log.keep,
    )
    run.accelerator.wait_for_everyone()
    return path

def restore_training_state(run, ckpt_dir: Path) -> None:
    """The inverse of :func:`save_training_state`: put every saved piece back into ``run``."""
    model = read_safetensors(ckpt_dir / "model.safetensors")
    state = read_safetensors(ckpt_dir / STATE_FILE, expect="training state")
    world = int(state.json("world_size"))
    if world != run.world:
        raise CheckpointError(
            f"{ckpt_dir} was written by {world} process(es) but this run has {run.world}",
            hint=f"resume with the same number of processes ({world}) so data order and randomness continue exactly",
        )
    for role in run.nets:
        load_module_state(run.unwrap(role), split_prefix(state.tensors, f"net.{role}"), role, state.path)
    param_groups = state.json("optim_param_groups")
    for group, opt in run.optimizers.items():
        tensors = split_prefix(state.tensors, f"optim.{group}")
        per_param: dict[int, dict] = {}
        for key, value in tensors.items():
            idx, _, name = key.partition(".")
            per_param.setdefault(int(idx), {})[name] = value
        try:
            opt.load_state_dict({"state": per_param, "param_groups": param_groups[group]})
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{state.path}: optimiser '{group}' state does not fit this recipe ({exc})") from None
    run.algorithm.load_state_dict(split_prefix(state.tensors, f"algo.{run.rank}"))
    for prefix, part in run.stateful_parts().items():
        saved = split_prefix(state.tensors, f"parts.{run.rank}.{prefix}")
        if saved:  # absent in checkpoints from before the part kept state
            try:
                part.load_state_dict(saved)
            except (RuntimeError, KeyError, ValueError) as exc:
                raise CheckpointError(f"{state.path}: the state of {prefix} does not fit this recipe ({exc})") from None
    samplers = state.json("samplers")[run.rank]
    for domain, sampler in run.samplers.items():
        sampler.load_state(samplers[domain])
    _set_rng_state(state.json("rng")[run.rank])
    run.lr.scale = float(state.json("lr_scale"))
    run.rollbacks = int(state.json("rollbacks"))
    run.step = int(model.meta["step"])
    # A plain string (strings are stored as they are); absent in checkpoints from before it was recorded.
    before = state.meta.get("mixed_precision")
    if before is not None and before != run.precision:
        run.resumed_precision = before



def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [_jsonable(o) for o in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return obj
