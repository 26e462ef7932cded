"""The run interface: everything a training algorithm may use, and nothing else.

An algorithm receives a :class:`Run` in every call (``setup``, ``train_step``, ``after_step``,
``eval_networks``, ``progress_inputs``). It gives access to

- ``nets`` (role -> network, wrapped for devices/DDP/mixed precision: call them to train; in
  training mode throughout ``setup``, ``train_step`` and ``after_step``) and ``unwrap(role)`` (the
  plain module, for copies and inference);
- ``optimizers`` (group -> torch optimiser; the trainer sets every group's learning rate before
  each step, from ``[optim.GROUP] lr`` and the group's schedule: never set it yourself) and
  ``backward(loss)`` (use it instead of ``loss.backward()``: it handles mixed-precision scaling);
- ``components`` (recipe section -> built component, e.g. ``components["loss"]``);
- ``next_batch()`` (a :class:`Batch`: the next real images of every domain the algorithm declares,
  with their fields, on the device, real-stage augmentation applied) and ``fixed_batch(num)``
  (the first ``num`` items of each domain, un-augmented, for progress grids);
- ``augment(x)`` (the in-step, differentiable augmentations for every discriminator input) and
  ``report_real_scores(scores)`` (call it in every discriminator update with D's raw outputs on the
  augmented real batch: adaptive augmentations such as ADA learn their strength from them);
- ``data`` (a :class:`DatasetInfo`: domains, fields, class names, image size), ``device``,
  ``step`` (steps completed: 0 during the first ``train_step``), ``total_steps``, ``seed``,
  ``rank``, ``world_size``, ``is_main``.

Algorithms never reach the trainer or the datasets themselves: that is what lets the trainer
shard data, resume exactly and change its internals without breaking a plugin.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import Tensor, nn

from ganforge.data.items import Batch, DatasetInfo

if TYPE_CHECKING:
    from ganforge.train.session import TrainRun

# --- the interface algorithms get ----------------------------------------------------------------
class Run:
    """The documented run interface (see the module docstring). Created by the trainer."""

    __slots__ = ("_t",)

    def __init__(self, trainer: "TrainRun"):
        self._t = trainer

    # networks and optimisers
    @property
    def nets(self) -> Mapping[str, nn.Module]:
        """Role -> network as the trainer wraps it (device, DDP, mixed precision): call these to train.
        They are in training mode during ``setup``, ``train_step`` and ``after_step``; the trainer
        puts the ``eval_networks`` in evaluation mode only around grids and scores, and restores them."""
        return MappingProxyType(self._t.nets)

    def unwrap(self, role: str) -> nn.Module:
        """The plain module of a role (no wrapper): for copies (EMA), ``eval_networks`` and inference."""
        return self._t.unwrap(role)

    @property
    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """Group -> torch optimiser, one per entry of the algorithm's ``optimizers``. Before every
        step the trainer sets each group's rate to its ``[optim.GROUP] lr`` times its schedule's
        ``factor(step, total)`` (0-based step) times a scale NaN rollbacks lower; the logged
        ``lr_factor`` is the first group's. Step them; never set their rates."""
        return MappingProxyType(self._t.optimizers)

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()`` with mixed-precision scaling and distributed gradient sync."""
        self._t.accelerator.backward(loss)

    @property
    def components(self) -> Mapping[str, Any]:
        return MappingProxyType(self._t.components)


    # data
    def next_batch(self) -> Batch:
        return self._t.next_batch()

    def fixed_batch(self, num: int, domains: tuple[str, ...] | None = None) -> Batch:
        return self._t.fixed_batch(num, domains)

    def augment(self, x: Tensor) -> Tensor:
        return self._t.augment(x)

    def report_real_scores(self, scores: Tensor) -> None:
        """D's raw outputs on this update's (augmented) real images, for adaptive augmentations."""
        self._t.report_real_scores(scores)

    @property
    def data(self) -> DatasetInfo:
        return self._t.data_info

    # where and when
    @property
    def device(self) -> torch.device:
        return self._t.device

    @property
    def step(self) -> int:
        """Steps completed so far: 0 during the first ``train_step`` and its ``after_step`` (a resumed
        run starts from its checkpoint's step). It is the ``step`` the schedules get for this update."""
        return self._t.step

    @property
    def total_steps(self) -> int:
        """``train.steps``: the ``total`` the schedules get."""
        return self._t.recipe.train.steps

    @property
    def seed(self) -> int:
        return self._t.recipe.seed

    @property
    def rank(self) -> int:
        return self._t.rank

    @property
    def world_size(self) -> int:
        return self._t.world

    @property
    def is_main(self) -> bool:
        return self._t.is_main

    def __repr__(self) -> str:
        return f"Run(step={self.step}, roles={list(self._t.nets)}, device={self.device})"
