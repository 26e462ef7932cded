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

from . import __version__
from .checkpoint import (
    CHECKPOINTS,
    STATE_FILE,
    load_module_state,
    read_latest,
    read_safetensors,
    split_prefix,
    write_checkpoint,
)
from .config import config_to_dict
from .errors import CheckpointError, DataError, TrainingError, TrainingInterrupted
from .recipes import Recipe
from .registry import Registry
from .sampler import EpochSampler, fetch

RECIPE_FILE = "recipe.toml"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"


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

    def __init__(self, recipe: Recipe, registry: Registry, run_dir: Path):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.recipe, self.registry = recipe, registry
        # broadcast_buffers=False: a discriminator runs several forwards (real, fake) before one
        # backward; re-broadcasting BatchNorm buffers in between breaks autograd under DDP.
        ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
        # Newer torch renames the option but keeps it working; its warning would only confuse users.
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*deprecated")
        # cpu=True without CUDA: Accelerate otherwise ignores torchrun's environment on a CPU-only
        # machine and silently runs every process on its own (measured: world size 1 per process).
        self.accelerator = Accelerator(
            mixed_precision=recipe.train.mixed_precision, kwargs_handlers=[ddp], cpu=not torch.cuda.is_available()
        )
        self.is_main = self.accelerator.is_main_process
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        self.device = self.accelerator.device
        self.run_dir = Path(run_dir)
        if self.world > 1:  # every process must write to (and read from) the main process's choice
            from accelerate.utils import broadcast_object_list

            self.run_dir = Path(broadcast_object_list([str(self.run_dir)])[0])
        threads = recipe.train.threads or _env_threads() or max(1, available_cores() // self.world)
        torch.set_num_threads(threads)
        self.threads = threads
        self.step = 0
        self.lr_scale = 1.0
        self.rollbacks = 0
        self.algorithm = None

    # --- helpers algorithms use ---------------------------------------------------------------
    def unwrap(self, role: str) -> nn.Module:
        return self.accelerator.unwrap_model(self.nets[role])

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The in-step (differentiable) augmentations, applied to every discriminator input."""
        for aug in self.step_augment:
            x = aug(x)
        return x

    def next_batch(self) -> dict[str, torch.Tensor]:
        batch = {}
        for domain, sampler in self.samplers.items():
            images = fetch(self.data[domain], sampler.next_indices()).to(self.device, non_blocking=True)
            with torch.no_grad():
                for aug in self.real_augment:  # classic augmentation: real images only, as loaded
                    images = aug(images)
            batch[domain] = images
        return batch

    # --- building -----------------------------------------------------------------------------
    def build(self) -> None:
        recipe, registry = self.recipe, self.registry
        algo_comp = registry.get("algorithm", recipe.algorithm.name)
        self.algorithm = algo_comp.builder(recipe.algorithm.config)
        algo = self.algorithm

        self.data = registry.get("dataset", recipe.data.name).builder(recipe.data.config)
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
        self.samplers = {
            d: EpochSampler(len(self.data[d]), recipe.train.batch_size, recipe.seed, d, self.rank, self.world)
            for d in algo.domains
        }

        augs = [registry.get("augmentation", p.name).builder(p.config) for p in recipe.augment]
        self.real_augment = [a for a in augs if getattr(a, "stage", "step") == "real"]
        self.step_augment = [a for a in augs if getattr(a, "stage", "step") != "real"]

        # Same seed on every process: identical initial weights (DDP also broadcasts them).
        torch.manual_seed(recipe.seed)
        self.parts = {}
        nets: dict[str, nn.Module] = {}
        for section, part in recipe.parts.items():
            if section in algo.roles.values():
                continue
            comp = registry.get(part.kind, part.name)
            built = comp.builder(part.config) if part.config is not None else comp.builder()
            self.parts[section] = built.to(self.device) if isinstance(built, nn.Module) else built
        for role, section in algo.roles.items():
            part = recipe.parts[section]
            comp = registry.get(part.kind, part.name)
            nets[role] = comp.builder(part.config) if part.config is not None else comp.builder()
        optimizers = {}
        self.base_lr = {}
        for group, roles in algo.optimizers.items():
            cfg = recipe.optim[group]
            params = [p for r in roles for p in nets[r].parameters()]
            optimizers[group] = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
            self.base_lr[group] = cfg.lr
        roles, groups = list(nets), list(optimizers)
        prepared = self.accelerator.prepare(*nets.values(), *optimizers.values())
        if not isinstance(prepared, (list, tuple)):
            prepared = [prepared]
        self.nets = dict(zip(roles, prepared[: len(roles)]))
        self.optimizers = dict(zip(groups, prepared[len(roles) :]))
        # Each process draws its own noise and augmentations from here on.
        self._seed_everything(recipe.seed + 1 + 1000 * self.rank)
        algo.setup(self)

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.manual_seed(seed)

    # --- learning rate ------------------------------------------------------------------------
    def lr_factor(self, step: int) -> float:
        total = self.recipe.train.steps
        start = int(self.recipe.train.lr_decay_start * total)
        if step < start or total <= start:
            return 1.0
        return max(0.0, (total - step) / (total - start))

    def _apply_lr(self) -> None:
        factor = self.lr_factor(self.step) * self.lr_scale
        for group, opt in self.optimizers.items():
            for pg in opt.param_groups:
                pg["lr"] = self.base_lr[group] * factor

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
        entries = {}
        for role, module in nets.items():
            section = self.algorithm.roles.get(role) or _section_of(role, self.algorithm.roles)
            part = self.recipe.parts[section]
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
        if not self.is_main:
            self.accelerator.wait_for_everyone()
            return None
        eval_nets = self.algorithm.eval_networks(self)
        model_tensors = {f"{role}.{k}": v for role, m in eval_nets.items() for k, v in m.state_dict().items()}
        model_meta = {
            "ganforge_version": __version__,
            "algorithm": {"name": self.recipe.algorithm.name, "config": config_to_dict(self.recipe.algorithm.config)},
            "networks": self.net_entries(eval_nets),
            "recipe": self.recipe.to_toml(),
        }
        state_tensors = {f"net.{role}.{k}": v for role in self.nets for k, v in self.unwrap(role).state_dict().items()}
        optim_meta = {}
        for group, opt in self.optimizers.items():
            sd = opt.state_dict()
            optim_meta[group] = sd["param_groups"]
            for idx, pstate in sd["state"].items():
                for key, value in pstate.items():
                    t = value if torch.is_tensor(value) else torch.tensor(value)
                    state_tensors[f"optim.{group}.{idx}.{key}"] = t
        for rank, algo_state in enumerate(algo_states):  # per process: e.g. each has its own image pool
            for key, value in algo_state.items():
                state_tensors[f"algo.{rank}.{key}"] = value
        state_meta = {
            "optim_param_groups": optim_meta,
            "samplers": sampler_states,
            "rng": rng_states,
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "world_size": self.world,
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
        samplers = state.json("samplers")[self.rank]
        for domain, sampler in self.samplers.items():
            sampler.load_state(samplers[domain])
        self._set_rng_state(state.json("rng")[self.rank])
        self.lr_scale = float(state.json("lr_scale"))
        self.rollbacks = int(state.json("rollbacks"))
        self.step = int(model.meta["step"])


def _env_threads() -> int:
    """OMP_NUM_THREADS, when the user (or torchrun) set it to a positive number."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


def _section_of(role: str, roles: dict[str, str]) -> str:
    # Derived networks (e.g. "generator_ema") share the section of the role they derive from.
    for base, section in roles.items():
        if role.startswith(base):
            return section
    raise KeyError(role)


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
) -> Path:
    """Train ``recipe`` in ``run_dir`` (resuming from its latest checkpoint if ``resume``)."""
    from . import evaluation, reporting

    run = TrainRun(recipe, registry, run_dir)
    acc = run.accelerator
    say = reporting.Reporter(run, console, progress)
    try:
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
        if resume:
            say.line(f"resumed from {latest} at step {run.step}")
        fixed = run.algorithm.progress_inputs(run, recipe.log.num_samples) if run.is_main else None
        scorer = evaluation.TrainingEvaluator.create(run)  # None unless the recipe has [eval] every > 0
        total = recipe.train.steps
        end = min(total, stop_at) if stop_at else total
        last_saved = run.step
        with _Signals() as signals:
            while run.step < end:
                run._apply_lr()
                logs = run.algorithm.train_step(run, run.next_batch())
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
                run.algorithm.after_step(run)
                run.step += 1
                say.step(logs)
                if run.is_main and (run.step % recipe.log.sample_every == 0 or run.step == total):
                    say.grid(fixed)
                if run.step % recipe.log.checkpoint_every == 0 or run.step == end:
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
