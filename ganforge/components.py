"""The interfaces components implement. The core only ever talks to these, never to a family.

Conventions shared by every plugin:

- Images are float tensors ``[B, 3, H, W]`` in ``[-1, 1]``.
- A noise-to-image generator exposes ``noise_size`` (an int) and maps ``[B, noise_size]`` to images.
- An image-to-image generator maps images to images of the same size.
- A discriminator maps images to raw scores of any shape ``[B, ...]`` (a scalar per image, or a grid
  of patch scores); losses reduce them.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn


class AdversarialLoss(nn.Module):
    """An adversarial objective over raw discriminator outputs.

    ``penalty`` is for objectives that regularise the critic itself (WGAN-GP): it receives the
    critic as a callable (augmentation already folded in) and the real and fake batches, and the
    algorithm adds what it returns to the discriminator loss. Most losses leave it at ``None``.
    """

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | None:
        return None


class Augmentation:
    """An image augmentation.

    ``stage = "real"``: applied to real batches as they are loaded (classic augmentation, no
    gradient needed, fakes never see it).
    ``stage = "step"``: applied inside the training step to every discriminator input, real and
    fake alike; it must be differentiable so the generator's gradient flows through it.

    Randomness must come from torch's global generator (the trainer seeds and checkpoints it),
    so runs are reproducible and resume exactly.
    """

    stage: ClassVar[str] = "step"

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError


class Algorithm:
    """A training strategy: which networks it needs and how one step runs.

    Class attributes describe the shape of the run, so the core can build and checkpoint it
    without knowing anything else:

    - ``sections``: recipe section -> component kind, for every component the recipe must name
      (e.g. ``{"generator": "generator", "discriminator": "discriminator", "loss": "loss"}``).
    - ``roles``: network role -> the recipe section it is built from. Two roles may share a
      section (two generators built from one ``[generator]``).
    - ``optimizers``: optimiser group -> roles it updates; the recipe's ``[optim.GROUP]`` sets it.
    - ``domains``: the data domains a step consumes (the dataset must provide them).

    The registered builder of an algorithm is its class: ``builder(config)`` returns the instance.
    """

    sections: ClassVar[dict[str, str]] = {}
    roles: ClassVar[dict[str, str]] = {}
    optimizers: ClassVar[dict[str, tuple[str, ...]]] = {}
    domains: ClassVar[tuple[str, ...]] = ("images",)

    def setup(self, run: Any) -> None:
        """Called once the networks, optimisers and augmentations exist (``run`` is a TrainRun)."""

    def train_step(self, run: Any, batch: dict[str, Tensor]) -> dict[str, float]:
        """One iteration: update the networks and return the scalars to log."""
        raise NotImplementedError

    def after_step(self, run: Any) -> None:
        """Called after every step (e.g. to update an exponential moving average)."""

    def state_dict(self) -> dict[str, Tensor]:
        """Extra training state (tensors only) that must survive a resume."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        pass

    def eval_networks(self, run: Any) -> dict[str, nn.Module]:
        """Networks to store for inference (may include e.g. an EMA copy)."""
        return {role: run.unwrap(role) for role in self.roles}

    # --- inference: used by progress grids, `ganforge sample` and `ganforge translate`.
    def progress_inputs(self, run: Any, num: int) -> dict[str, Tensor]:
        """Fixed inputs (noise, or a batch of source images) for the progress grids."""
        raise NotImplementedError

    @torch.no_grad()
    def progress_grid(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Images for a progress grid and the number of columns to lay them out in."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, nets: dict[str, nn.Module], num: int, seed: int, images: dict[str, Tensor] | None) -> tuple[Tensor, int]:
        """Images for `ganforge sample` (and the number of grid columns)."""
        raise NotImplementedError

    def translator(self, nets: dict[str, nn.Module], direction: str) -> Callable[[Tensor], Tensor]:
        """A function image batch -> translated batch, for `ganforge translate`."""
        from .errors import GanforgeError

        raise GanforgeError(
            f"this checkpoint's algorithm ({type(self).__name__}) does not translate images",
            hint="use `ganforge sample` for noise-to-image models",
        )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
