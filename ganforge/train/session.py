"""A training run as the trainer holds it: networks, optimisers, data, augmentations, accelerator.

:class:`TrainRun` builds everything a recipe names through the registry and serves the run
interface (:class:`ganforge.train.run.Run`, the only view algorithms get). The loop that drives it is
:mod:`ganforge.train.loop`; saving and restoring its state is :mod:`ganforge.io.state`.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge.core.components import check_loss
from ganforge.core.errors import DataError, PluginCodeError
from ganforge.core.recipes import Recipe, apply_data_classes
from ganforge.core.registry import Registry, plugin_code
from ganforge.data.items import Batch, describe_dataset, fetch_fields
from ganforge.data.order import EpochSampler
from ganforge.train.cpushare import CpuShare
from ganforge.train.hardware import resolve_precision
from ganforge.train.lr import LearningRates
from ganforge.train.run import Run


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class TrainRun:
    """Everything one training run holds; algorithms receive it in every call."""

    def __init__(self, recipe: Recipe, registry: Registry, run_dir: Path, log_with: list[str] | None = None):
        from accelerate import Accelerator

        from ganforge.train.trackers import accelerator_options
        from accelerate.utils import DistributedDataParallelKwargs

        self.recipe, self.registry = recipe, registry
        # broadcast_buffers=False: a discriminator runs several forwards (real, fake) before one
        # backward; re-broadcasting BatchNorm buffers in between breaks autograd under DDP.
        ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
        # Newer torch renames the option but keeps it working; its warning would only confuse users.
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*deprecated")
        # cpu=True without CUDA: Accelerate otherwise ignores torchrun's environment on a CPU-only
        # machine and silently runs every process on its own (measured: world size 1 per process).
        self.precision, self.precision_note = resolve_precision(recipe.train.mixed_precision, cuda=torch.cuda.is_available())
        self.resumed_precision: str | None = None  # what the checkpoint resumed from trained in, when different
        self.accelerator = Accelerator(
            mixed_precision=self.precision, kwargs_handlers=[ddp], cpu=not torch.cuda.is_available(),
            **accelerator_options(log_with, run_dir),
        )
        self.is_main = self.accelerator.is_main_process
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        self.device = self.accelerator.device
        self.run_dir = Path(run_dir)
        if self.world > 1:  # every process must write to (and read from) the main process's choice
            from accelerate.utils import broadcast_object_list

            self.run_dir = Path(broadcast_object_list([str(self.run_dir)])[0])
        # Threads: fixed by train.threads / OMP_NUM_THREADS, else this process's fair share of the
        # cores among the training runs on this machine, re-read while training (see cpushare).
        self.cpu = CpuShare(self.run_dir, group=str(self.run_dir.resolve()), cores=available_cores(),
                            fixed_threads=recipe.train.threads or _env_threads())
        self.cpu_note = self.cpu.start()
        self.threads = self.cpu.threads
        torch.set_num_threads(self.threads)
        self.step = 0
        self.rollbacks = 0  # NaN rollbacks so far (saved in checkpoints)
        self.last_saved = 0  # the step of the newest checkpoint this run wrote or resumed from
        self.algorithm = None
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.components: dict[str, object] = {}
        self.augmentations: dict[str, object] = {}
        self.api = Run(self)  # the only view of this run that algorithms get

    # --- what the run interface (ganforge.train.run.Run) exposes ----------------------------------------
    def unwrap(self, role: str) -> nn.Module:
        return self.accelerator.unwrap_model(self.nets[role])

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The in-step (differentiable) augmentations, applied to every discriminator input."""
        for aug in self.step_augment:
            x = aug(x)
        return x

    def report_real_scores(self, scores: torch.Tensor) -> None:
        """Hand D's outputs on real images to the augmentations that adapt (ADA). Under several
        processes every one sees the scores of all, so their augmentation strengths stay equal."""
        observers = [a for a in self.step_augment if callable(getattr(a, "observe", None))]
        if not observers:
            return
        scores = scores.detach().float().reshape(len(scores), -1)  # one row per image, patch scores kept together
        if self.world > 1:
            scores = self.accelerator.gather(scores)
        for aug in observers:
            aug.observe(scores)

    def stateful_parts(self) -> dict[str, Any]:
        """Augmentations and components (losses) whose state must survive a resume, by checkpoint prefix."""
        parts = {f"aug.{name}": aug for name, aug in self.augmentations.items()}
        parts.update({f"comp.{section}": comp for section, comp in self.components.items()})
        return {prefix: part for prefix, part in parts.items() if callable(getattr(part, "state_dict", None))}

    def part_logs(self) -> dict[str, float]:
        """Scalars augmentations and losses report each step (``log_values()``), e.g. ADA's probability."""
        logs: dict[str, float] = {}
        for part in [*self.augmentations.values(), *self.components.values()]:
            values = getattr(part, "log_values", None)
            if callable(values):
                logs.update({str(k): float(v) for k, v in values().items()})
        return logs

    def next_batch(self) -> Batch:
        fields = {}
        for domain, sampler in self.samplers.items():
            items = fetch_fields(self.data[domain], sampler.next_indices())
            items = {k: v.to(self.device, non_blocking=True) for k, v in items.items()}
            with torch.no_grad():
                self._augment_real(domain, items)
            fields[domain] = items
        return Batch(fields)

    def _augment_real(self, domain: str, items: dict[str, torch.Tensor]) -> None:
        """Classic augmentation of real images as loaded. Every image field of an item (a paired
        target, say) gets the identical transform: the random draws are replayed for each."""
        images = [k for k, kind in self.data_info.domains[domain].fields.items() if kind == "image"]
        for aug in self.real_augment:
            before = self._rng_snapshot() if len(images) > 1 else None
            for i, key in enumerate(images):
                if i > 0:
                    self._rng_restore(before)
                items[key] = aug(items[key])

    def _rng_snapshot(self):
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _rng_restore(self, state) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.device)

    def fixed_batch(self, num: int, domains: tuple[str, ...] | None = None) -> Batch:
        """The first ``num`` items of each domain, on the CPU, without augmentation."""
        fields = {}
        for domain in domains or tuple(self.samplers):
            ds = self.data[domain]
            fields[domain] = fetch_fields(ds, torch.arange(min(num, len(ds))))
        return Batch(fields)

    # --- building -----------------------------------------------------------------------------
    def build(self) -> None:
        """Build everything the recipe names, in order: algorithm, data, augmentations, networks
        and components, optimisers and learning rates; then wrap for devices and call ``setup``."""
        recipe, registry = self.recipe, self.registry
        self.algorithm_component = algo_comp = registry.get("algorithm", recipe.algorithm.name)
        self.algorithm = algo_comp.build(recipe.algorithm.config)
        self._build_data()
        self._build_augmentations()
        # Same seed on every process: identical initial weights (DDP also broadcasts them).
        torch.manual_seed(recipe.seed)
        nets = self._build_networks()
        optimizers = self._build_optimizers(nets)
        roles, groups = list(nets), list(optimizers)
        prepared = self.accelerator.prepare(*nets.values(), *optimizers.values())
        if not isinstance(prepared, (list, tuple)):
            prepared = [prepared]
        self.nets = dict(zip(roles, prepared[: len(roles)]))
        self.optimizers = dict(zip(groups, prepared[len(roles) :]))
        # Each process draws its own noise and augmentations from here on.
        self._seed_everything(recipe.seed + 1 + 1000 * self.rank)
        with plugin_code(algo_comp, "in setup"):
            self.algorithm.setup(self.api)

    def _build_data(self) -> None:
        """The dataset's domains, checked against what the algorithm needs, and their data order."""
        recipe, algo = self.recipe, self.algorithm
        data_comp = self.registry.get("dataset", recipe.data.name)
        self.data = data_comp.build(recipe.data.config)
        if not isinstance(self.data, dict) or not self.data:
            raise PluginCodeError(
                f"{data_comp.label} returned {type(self.data).__name__}, not a dict {{domain: dataset}}",
                hint="a dataset builder returns e.g. {'images': ImageTensorDataset(...)}",
            )
        missing = [d for d in algo.domains if d not in self.data]
        if missing:
            raise DataError(
                f"algorithm '{recipe.algorithm.name}' needs data domains {list(algo.domains)} but dataset "
                f"'{recipe.data.name}' provides {list(self.data)}",
                hint="choose a dataset of the right shape in [data]",
            )
        for domain in algo.domains:
            if len(self.data[domain]) == 0:
                raise DataError(f"dataset '{recipe.data.name}' has no images in domain '{domain}'")
        with plugin_code(data_comp, "describing its items"):
            self.data_info = describe_dataset(
                recipe.data.name, {d: self.data[d] for d in algo.domains}, getattr(recipe.data.config, "image_size", None)
            )
        for domain, needed in getattr(algo, "fields", {}).items():
            have = self.data_info.domains[domain].fields if domain in self.data_info.domains else {}
            lacking = [f for f in needed if f not in have]
            if lacking:
                raise DataError(
                    f"algorithm '{recipe.algorithm.name}' needs the field(s) {', '.join(lacking)} in domain '{domain}', "
                    f"but dataset '{recipe.data.name}' items have: {', '.join(have) or 'nothing'}",
                    hint="choose a dataset whose items carry them (e.g. labelled or paired folders) in [data]",
                )
        # A class count the recipe left to the data is known now (for datasets that cannot list it earlier).
        self.recipe = recipe = apply_data_classes(recipe, self.registry, self.data_info.class_names())
        self.samplers = {
            d: EpochSampler(len(self.data[d]), recipe.train.batch_size, recipe.seed, d, self.rank, self.world)
            for d in algo.domains
        }

    def _build_augmentations(self) -> None:
        registry = self.registry
        self.augmentations = {p.name: registry.get("augmentation", p.name).build(p.config) for p in self.recipe.augment}
        augs = list(self.augmentations.values())
        self.real_augment = [a for a in augs if getattr(a, "stage", "step") == "real"]
        self.step_augment = [a for a in augs if getattr(a, "stage", "step") != "real"]

    def _build_networks(self) -> dict[str, nn.Module]:
        """The algorithm's networks by role, and every other component (the loss, ...) by section."""
        recipe, registry, algo = self.recipe, self.registry, self.algorithm
        self.components = {}
        nets: dict[str, nn.Module] = {}
        for section, part in recipe.parts.items():
            if section in algo.roles.values():
                continue
            comp = registry.get(part.kind, part.name)
            built = comp.build(part.config)
            if part.kind == "loss":
                check_loss(built, comp.label)
            self.components[section] = built.to(self.device) if isinstance(built, nn.Module) else built
        self.role_components = {}
        for role, section in algo.roles.items():
            part = recipe.parts[section]
            comp = self.role_components[role] = registry.get(part.kind, part.name)
            net = comp.build(part.config)
            if not isinstance(net, nn.Module):
                raise PluginCodeError(
                    f"{comp.label} built a {type(net).__name__}, not a torch.nn.Module",
                    hint="its builder must return the network",
                )
            nets[role] = net
        return nets

    def _build_optimizers(self, nets: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per group the algorithm declares; :class:`LearningRates` owns their rates."""
        recipe, registry = self.recipe, self.registry
        optimizers, schedules, base_lr = {}, {}, {}
        for group, roles in self.algorithm.optimizers.items():
            spec = recipe.optim[group]
            comp = registry.get("optimizer", spec.optimizer.name)
            factory = comp.build(spec.optimizer.config)
            params = [p for r in roles for p in nets[r].parameters()]
            with plugin_code(comp, f"creating the optimiser of group '{group}'"):
                optimizer = factory(params)
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise PluginCodeError(f"{comp.label} made a {type(optimizer).__name__}, not a torch.optim.Optimizer")
            optimizers[group] = optimizer
            base_lr[group] = spec.lr
            schedules[group] = registry.get("schedule", spec.schedule.name).build(spec.schedule.config)
        self.lr = LearningRates(base_lr, schedules, recipe.train.steps)  # the one owner of every rate
        return optimizers

    def algorithm_call(self, method: str, *args):
        """Call an algorithm method with the run interface; its exceptions name the algorithm."""
        with plugin_code(self.algorithm_component, f"in {method} at step {self.step + 1}"):
            return getattr(self.algorithm, method)(self.api, *args)

    def check_outputs_once(self):
        """For the first step: hooks that check every network's output and name the component that
        breaks its contract (see :mod:`ganforge.train.checks`); the caller removes them."""
        from ganforge.train.checks import check_outputs_once

        return check_outputs_once(self)

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.manual_seed(seed)


def _env_threads() -> int:
    """OMP_NUM_THREADS, when the user (or torchrun) set it to a positive number."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0
