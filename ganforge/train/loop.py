"""The one trainer every algorithm uses: HF Accelerate, checkpoints, progress, interruption.

The trainer owns everything around a step — building networks from the recipe, optimisers,
learning-rate decay, data order, mixed precision, distributed processes, logging, grids,
checkpoints, resume — and hands each step to the recipe's algorithm plugin.
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import shutil
import signal
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforge import __version__

from ganforge.train import runlock
from ganforge.io.checkpoint import (
    CHECKPOINTS,
    STATE_FILE,
    load_module_state,
    read_latest,
    read_safetensors,
    split_prefix,
    write_checkpoint,
)
from ganforge.core.components import adapt_loss
from ganforge.train.cpushare import CpuShare
from ganforge.train.hardware import resolve_precision
from ganforge.core.config import config_to_dict
from ganforge.core.errors import CheckpointError, DataError, PluginCodeError, TrainingError, TrainingInterrupted
from ganforge.core.recipes import Recipe
from ganforge.core.registry import Registry, plugin_code
from ganforge.data.items import Batch, describe_dataset, fetch_fields
from ganforge.train.run import Run
from ganforge.data.order import EpochSampler

from ganforge.io.runfiles import METRICS_FILE, RECIPE_FILE, SAMPLES_DIR  # noqa: E402,F401 - the run folder's names


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Signals:
    """First Ctrl-C / SIGTERM asks the loop to checkpoint and stop; a second Ctrl-C exits at once."""

    def __init__(self):
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            # Files are only ever renamed into place, so leaving now cannot corrupt a checkpoint.
            os._exit(130)
        self.received = signum

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


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
        self.lr_scale = 1.0
        self.rollbacks = 0
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
        recipe, registry = self.recipe, self.registry
        self.algorithm_component = algo_comp = registry.get("algorithm", recipe.algorithm.name)
        self.algorithm = algo = algo_comp.build(recipe.algorithm.config)

        data_comp = registry.get("dataset", recipe.data.name)
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
        self.samplers = {
            d: EpochSampler(len(self.data[d]), recipe.train.batch_size, recipe.seed, d, self.rank, self.world)
            for d in algo.domains
        }

        self.augmentations = {p.name: registry.get("augmentation", p.name).build(p.config) for p in recipe.augment}
        augs = list(self.augmentations.values())
        self.real_augment = [a for a in augs if getattr(a, "stage", "step") == "real"]
        self.step_augment = [a for a in augs if getattr(a, "stage", "step") != "real"]

        # Same seed on every process: identical initial weights (DDP also broadcasts them).
        torch.manual_seed(recipe.seed)
        self.components = {}
        nets: dict[str, nn.Module] = {}
        for section, part in recipe.parts.items():
            if section in algo.roles.values():
                continue
            built = registry.get(part.kind, part.name).build(part.config)
            if part.kind == "loss":
                built = adapt_loss(built)
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
        optimizers, self.schedules, self.base_lr = {}, {}, {}
        for group, roles in algo.optimizers.items():
            spec = recipe.optim[group]
            comp = registry.get("optimizer", spec.optimizer.name)
            factory = comp.build(spec.optimizer.config)
            params = [p for r in roles for p in nets[r].parameters()]
            with plugin_code(comp, f"creating the optimiser of group '{group}'"):
                optimizer = factory(params)
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise PluginCodeError(f"{comp.label} made a {type(optimizer).__name__}, not a torch.optim.Optimizer")
            optimizers[group] = optimizer
            self.base_lr[group] = spec.lr
            self.schedules[group] = registry.get("schedule", spec.schedule.name).build(spec.schedule.config)
        roles, groups = list(nets), list(optimizers)
        prepared = self.accelerator.prepare(*nets.values(), *optimizers.values())
        if not isinstance(prepared, (list, tuple)):
            prepared = [prepared]
        self.nets = dict(zip(roles, prepared[: len(roles)]))
        self.optimizers = dict(zip(groups, prepared[len(roles) :]))
        # Each process draws its own noise and augmentations from here on.
        self._seed_everything(recipe.seed + 1 + 1000 * self.rank)
        with plugin_code(algo_comp, "in setup"):
            algo.setup(self.api)

    def algorithm_call(self, method: str, *args):
        """Call an algorithm method with the run interface; its exceptions name the algorithm."""
        with plugin_code(self.algorithm_component, f"in {method} at step {self.step + 1}"):
            return getattr(self.algorithm, method)(self.api, *args)

    def check_outputs_once(self):
        """For the first step: every network must return a tensor (a tuple or dict would only fail
        later, deep inside a loss, with a message naming nobody)."""
        handles = []
        for role, comp in self.role_components.items():
            def hook(module, inputs, output, comp=comp, role=role):
                if getattr(module, "multiple_outputs", False) and isinstance(output, (tuple, list)):
                    output = output[0] if output and all(isinstance(o, torch.Tensor) for o in output) else output
                if not isinstance(output, torch.Tensor):
                    raise PluginCodeError(
                        f"{comp.label} returned a {type(output).__name__} from forward (as '{role}'), not a tensor",
                        hint="a generator returns images [B, 3, H, W]; a discriminator returns scores [B, ...] "
                        "(a network that returns a tuple of tensors declares `multiple_outputs = True`)",
                    )
            handles.append(self.unwrap(role).register_forward_hook(hook))
        return handles

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.manual_seed(seed)

    # --- learning rate ------------------------------------------------------------------------
    def lr_factors(self, step: int) -> dict[str, float]:
        total = self.recipe.train.steps
        return {group: float(schedule.factor(step, total)) for group, schedule in self.schedules.items()}

    def lr_factor(self, step: int) -> float:
        """The first group's schedule factor (logged as lr_factor)."""
        factors = self.lr_factors(step)
        return next(iter(factors.values()), 1.0)

    def _apply_lr(self) -> None:
        for group, factor in self.lr_factors(self.step).items():
            for pg in self.optimizers[group].param_groups:
                pg["lr"] = self.base_lr[group] * factor * self.lr_scale

    # --- state --------------------------------------------------------------------------------
    def _rng_state(self) -> dict:
        state = {
            "python": _jsonable(random.getstate()),
            "numpy": _jsonable(np.random.get_state()),
            "torch": torch.get_rng_state().tolist(),
        }
        if torch.cuda.is_available():
            state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
        return state

    def _set_rng_state(self, state: dict) -> None:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        np_state = state["numpy"]
        np.random.set_state((np_state[0], np.array(np_state[1], dtype=np.uint32), *np_state[2:]))
        torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])

    def _per_process(self, value: Any) -> list:
        if self.world == 1:
            return [value]
        from accelerate.utils import gather_object

        return gather_object([value])

    def net_entries(self, nets: dict[str, nn.Module]) -> dict[str, dict]:
        """Checkpoint metadata for each stored network: registered name and config."""
        algo = self.algorithm
        entries = {}
        for role, module in nets.items():
            base = role if role in algo.roles else getattr(algo, "derived", {}).get(role)
            if base not in algo.roles:
                raise PluginCodeError(
                    f"{self.algorithm_component.label} stores a network '{role}' for inference that is neither one of "
                    f"its roles ({', '.join(algo.roles)}) nor declared in `derived`",
                    hint="declare derived networks, e.g. derived = {'generator_ema': 'generator'}",
                )
            part = self.recipe.parts[algo.roles[base]]
            comp = self.registry.get(part.kind, part.name)
            entries[role] = {
                "kind": part.kind, "name": part.name, "config": config_to_dict(part.config),
                "plugin": comp.plugin, "distribution": comp.distribution or "",
            }
        return entries

    def save_checkpoint(self) -> Path | None:
        sampler_states = self._per_process({d: s.state() for d, s in self.samplers.items()})
        rng_states = self._per_process(self._rng_state())
        algo_states = self._per_process({k: v.cpu() for k, v in self.algorithm.state_dict().items()})
        part_states = self._per_process({
            f"{prefix}.{k}": v.detach().cpu() for prefix, part in self.stateful_parts().items()
            for k, v in part.state_dict().items() if torch.is_tensor(v)
        })
        if not self.is_main:
            self.accelerator.wait_for_everyone()
            return None
        eval_nets = self.algorithm_call("eval_networks")
        model_tensors = {f"{role}.{k}": v for role, m in eval_nets.items() for k, v in m.state_dict().items()}
        model_meta = {
            "ganforge_version": __version__,
            "algorithm": {"name": self.recipe.algorithm.name, "config": config_to_dict(self.recipe.algorithm.config)},
            "networks": self.net_entries(eval_nets),
            "dataset": self.data_info.to_json(),
            "recipe": self.recipe.to_toml(),
        }
        state_tensors = {f"net.{role}.{k}": v for role in self.nets for k, v in self.unwrap(role).state_dict().items()}
        optim_meta = {}
        for group, opt in self.optimizers.items():
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
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "world_size": self.world,
            "mixed_precision": self.precision,
        }
        path = write_checkpoint(
            self.run_dir / CHECKPOINTS, self.step, model_tensors, model_meta, state_tensors, state_meta,
            keep=self.recipe.log.keep,
        )
        self.accelerator.wait_for_everyone()
        return path

    def load_checkpoint(self, ckpt_dir: Path) -> None:
        model = read_safetensors(ckpt_dir / "model.safetensors")
        state = read_safetensors(ckpt_dir / STATE_FILE, expect="training state")
        world = int(state.json("world_size"))
        if world != self.world:
            raise CheckpointError(
                f"{ckpt_dir} was written by {world} process(es) but this run has {self.world}",
                hint=f"resume with the same number of processes ({world}) so data order and randomness continue exactly",
            )
        for role in self.nets:
            load_module_state(self.unwrap(role), split_prefix(state.tensors, f"net.{role}"), role, state.path)
        param_groups = state.json("optim_param_groups")
        for group, opt in self.optimizers.items():
            tensors = split_prefix(state.tensors, f"optim.{group}")
            per_param: dict[int, dict] = {}
            for key, value in tensors.items():
                idx, _, name = key.partition(".")
                per_param.setdefault(int(idx), {})[name] = value
            try:
                opt.load_state_dict({"state": per_param, "param_groups": param_groups[group]})
            except (ValueError, KeyError, RuntimeError) as exc:
                raise CheckpointError(f"{state.path}: optimiser '{group}' state does not fit this recipe ({exc})") from None
        self.algorithm.load_state_dict(split_prefix(state.tensors, f"algo.{self.rank}"))
        for prefix, part in self.stateful_parts().items():
            saved = split_prefix(state.tensors, f"parts.{self.rank}.{prefix}")
            if saved:  # absent in checkpoints from before the part kept state
                try:
                    part.load_state_dict(saved)
                except (RuntimeError, KeyError, ValueError) as exc:
                    raise CheckpointError(f"{state.path}: the state of {prefix} does not fit this recipe ({exc})") from None
        samplers = state.json("samplers")[self.rank]
        for domain, sampler in self.samplers.items():
            sampler.load_state(samplers[domain])
        self._set_rng_state(state.json("rng")[self.rank])
        self.lr_scale = float(state.json("lr_scale"))
        self.rollbacks = int(state.json("rollbacks"))
        self.step = int(model.meta["step"])
        # A plain string (strings are stored as they are); absent in checkpoints from before it was recorded.
        before = state.meta.get("mixed_precision")
        if before is not None and before != self.precision:
            self.resumed_precision = before


def _env_threads() -> int:
    """OMP_NUM_THREADS, when the user (or torchrun) set it to a positive number."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


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


# --- run directory -------------------------------------------------------------------------------
def check_output_dir(run_dir: Path, need_bytes: int) -> None:
    """Fail before training when the run directory cannot be written or the disk is nearly full."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise TrainingError(
            f"cannot write to the output directory {run_dir}: {exc.strerror or exc}",
            hint="choose a writable place with --output-dir",
        ) from None
    free = shutil.disk_usage(run_dir).free
    if free < need_bytes:
        raise TrainingError(
            f"only {free / 2**20:.0f} MiB free at {run_dir}, and this run needs about {need_bytes / 2**20:.0f} MiB "
            "for its checkpoints",
            hint="free some space, choose another --output-dir, or lower log.keep",
        )


def _truncate_metrics(path: Path, step: int) -> None:
    """After a resume, forget metric lines logged after the checkpoint (they will be logged again)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    path.write_text("".join(l + "\n" for l in kept), encoding="utf-8")


def _scalars(run: TrainRun, logs) -> dict[str, float]:
    """The logs a train_step returned, as floats (a clear error if they are not)."""
    try:
        return {str(k): float(v) for k, v in dict(logs or {}).items()}
    except (TypeError, ValueError) as exc:
        raise PluginCodeError(
            f"{run.algorithm_component.label}: train_step must return a dict of scalars to log, got {logs!r:.80}"
        ) from exc


def _finite(logs: dict[str, float]) -> str | None:
    for key, value in logs.items():
        if not math.isfinite(value):
            return key
    return None


# --- the loop ------------------------------------------------------------------------------------
def train(
    recipe: Recipe,
    registry: Registry,
    run_dir: Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    console=None,
    progress: bool = True,
    log_with: list[str] | None = None,
) -> Path:
    """Train ``recipe`` in ``run_dir`` (resuming from its latest checkpoint if ``resume``);
    ``log_with`` names Accelerate trackers (see ``ganforge.train.trackers``)."""
    from ganforge.eval import evaluator as evaluation
    from ganforge.train import report as reporting

    run = TrainRun(recipe, registry, run_dir, log_with)
    acc = run.accelerator
    say = reporting.Reporter(run, console, progress)
    try:
        runlock.acquire(run, resume=resume, notice=say.line)  # one owner per run folder, before any write
        if not resume and read_latest(run.run_dir / CHECKPOINTS) is not None:
            raise TrainingError(
                f"{run.run_dir} already holds a run with checkpoints",
                hint=f"continue it with `ganforge train --resume {run.run_dir}`, or choose another --output-dir",
            )
        if run.is_main:
            check_output_dir(run.run_dir, need_bytes=64 * 2**20)
        acc.wait_for_everyone()
        run.build()
        if resume:
            latest = read_latest(run.run_dir / CHECKPOINTS)
            if latest is None:
                raise CheckpointError(f"nothing to resume in {run.run_dir}: it has no checkpoint yet")
            run.load_checkpoint(latest)
        elif run.is_main:
            (run.run_dir / RECIPE_FILE).write_text(recipe.to_toml(), encoding="utf-8")
        if run.is_main:
            _truncate_metrics(run.run_dir / METRICS_FILE, run.step)
        say.start()
        if run.cpu_note:
            say.line(run.cpu_note)
        if run.is_main and run.device.type == "cpu" and acc.mixed_precision == "bf16":
            from ganforge.train.hardware import bf16_warning

            warning = bf16_warning()  # emulated bf16 is many times slower than fp32: say so, measured
            if warning:
                say.line(warning)
        if run.is_main and run.precision_note:
            say.line(run.precision_note)
        if resume:
            say.line(f"resumed from {latest} at step {run.step}")
            if run.resumed_precision is not None:
                names = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}
                say.line(f"this run trained in {names.get(run.resumed_precision, run.resumed_precision)} until step "
                         f"{run.step} and continues in {names[run.precision]} (train.mixed_precision = "
                         f"\"{recipe.train.mixed_precision}\" on this machine): it will not repeat the earlier "
                         "numbers exactly")
        fixed = run.algorithm_call("progress_inputs", recipe.log.num_samples) if run.is_main else None
        scorer = evaluation.TrainingEvaluator.create(run, say.line)  # None unless the recipe has [eval] every > 0
        total = recipe.train.steps
        end = min(total, stop_at) if stop_at else total
        last_saved = first_step = run.step
        with _Signals() as signals:
            while run.step < end:
                run._apply_lr()
                checks = run.check_outputs_once() if run.step == first_step else []
                try:
                    logs = run.algorithm_call("train_step", run.next_batch())
                finally:
                    for handle in checks:
                        handle.remove()
                logs = {**_scalars(run, logs), **run.part_logs()}
                bad = _finite(logs)
                if run.world > 1 and _agree_stop(run, bad is not None) and bad is None:
                    # Every process must take the same branch (stop or roll back), or they fall out of step.
                    bad = "the loss of another process"
                    logs = {**logs, bad: float("nan")}
                if bad is not None:
                    if recipe.train.on_nan == "rollback" and last_saved > 0 and run.rollbacks < 5:
                        # The checkpoint holds the scale and count from before the divergence: carry the
                        # current ones over, or the same rollback would repeat forever at the same rate.
                        lr_scale, rollbacks, failed_step = run.lr_scale, run.rollbacks, run.step + 1
                        run.load_checkpoint(read_latest(run.run_dir / CHECKPOINTS))
                        run.lr_scale = lr_scale * recipe.train.rollback_lr_factor
                        run.rollbacks = rollbacks + 1
                        if run.is_main:  # the steps after the checkpoint will be logged again
                            _truncate_metrics(run.run_dir / METRICS_FILE, run.step)
                        say.line(
                            f"non-finite {bad} at step {failed_step}: rolled back to step {run.step} and "
                            f"scaled learning rates by {run.lr_scale:g}"
                        )
                        continue
                    kept = (
                        f"the last good checkpoint (step {last_saved}) is kept in {run.run_dir / CHECKPOINTS}"
                        if last_saved > 0 else "no checkpoint had been written yet"
                    )
                    raise TrainingError(
                        f"training diverged: {bad} became {logs[bad]} at step {run.step + 1}; {kept}",
                        hint="lower the learning rates (--set optim.<group>.lr=...), use --mixed-precision no, "
                        + ("or pass --set train.on_nan=rollback" if recipe.train.on_nan != "rollback"
                           else f"and resume ({run.rollbacks} rollback(s) were tried)"),
                    )
                run.algorithm_call("after_step")
                run.step += 1
                note = run.cpu.poll()  # another run started or ended: take the new share of the cores
                if note:
                    torch.set_num_threads(run.cpu.threads)
                    run.threads = run.cpu.threads
                    say.line(note)
                say.step(logs)
                if run.is_main and (run.step % recipe.log.sample_every == 0 or run.step == total):
                    say.grid(fixed)
                # A scored step always gets its checkpoint: checkpoints/best must point at one.
                if run.step % recipe.log.checkpoint_every == 0 or run.step == end or (scorer and scorer.due(run)):
                    run.save_checkpoint()
                    last_saved = run.step
                    if scorer is not None:
                        scorer.after_checkpoint(run, say)
                # Processes must agree on stopping, or one would wait for the others forever.
                if _agree_stop(run, signals.received is not None):
                    if last_saved != run.step:
                        run.save_checkpoint()
                    error = TrainingInterrupted(
                        f"interrupted at step {run.step}; checkpoint saved in {run.run_dir / CHECKPOINTS}",
                        hint=f"resume with: ganforge train --resume {run.run_dir}",
                    )
                    error.exit_code = 143 if signals.received == signal.SIGTERM else 130
                    raise error
        say.finish(final=run.step >= total)
        # Leave together: a process that tears its process group down while another still talks
        # to it can abort at exit (seen with gloo on CPU).
        acc.wait_for_everyone()
        return run.run_dir
    finally:
        runlock.release(run)
        run.cpu.close()
        say.stop()
        # Drop the DDP wrappers (they hold the process group) before the group goes away, so no
        # communication thread outlives it; end_training() then destroys the group.
        run.nets, run.optimizers = {}, {}
        acc.free_memory()
        gc.collect()
        try:
            acc.end_training()
        except Exception:  # noqa: BLE001 - nothing to report if trackers were never started
            pass
        _forget_accelerator_state(run.world > 1)


def _forget_accelerator_state(distributed: bool) -> None:
    """Accelerate keeps one process-wide state; clear it so a later train() in the same process
    (a notebook, a benchmark, tests) can choose another mixed precision."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=distributed)
    GradientState._reset_state()


def _agree_stop(run: TrainRun, mine: bool) -> bool:
    if run.world == 1:
        return mine
    flag = torch.tensor([1.0 if mine else 0.0], device=run.device)
    return bool(run.accelerator.reduce(flag, reduction="sum").item() > 0)
