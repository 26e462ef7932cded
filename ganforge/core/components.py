"""The interfaces components implement. The core only ever talks to these, never to a family.

Conventions shared by every plugin:

- Images are float tensors ``[B, 3, H, W]`` in ``[-1, 1]``.
- A noise-to-image generator exposes ``noise_size`` (an int) and maps ``[B, noise_size]`` to images.
- An image-to-image generator maps images to images of the same size.
- A discriminator maps images to raw scores of any shape ``[B, ...]`` (a scalar per image, or a grid
  of patch scores); losses reduce them. One that sees several images at once (a pix2pix input and
  output, concatenated) says how many channels it takes in ``in_channels``.
- A class-conditional network exposes ``num_classes`` (an int) and its forward takes the class
  labels (``int64 [B]``) as a second argument: ``G(z, labels)``, ``D(images, labels)``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar

import torch
from torch import Tensor, nn

from ganforge.core.errors import PluginCodeError

if TYPE_CHECKING:  # documentation only: the core's run interface
    from ganforge.data.items import Batch, DatasetInfo
    from ganforge.train.run import Run


class AdversarialLoss(nn.Module):
    """An adversarial objective over raw discriminator outputs.

    ``d_loss(real_out, fake_out)``: the discriminator's loss. ``g_loss(fake_out, real_out)``: the
    generator's loss; ``real_out`` (the current D's outputs on the step's real batch when the loss
    sets ``uses_real_in_g``, else ``None``) lets relativistic losses be exact without keeping state.

    A loss that keeps state between steps (running averages, as LeCam does) holds it in buffers:
    the trainer stores the loss's ``state_dict()`` in every training checkpoint. ``log_values()``,
    when defined, adds scalars to every logged row.

    ``penalty`` is for objectives that regularise the critic itself (WGAN-GP): it receives the
    critic as a callable (augmentation already folded in) and the real and fake batches, and the
    algorithm adds what it returns to the discriminator loss. Most losses leave it at ``None``.
    """

    uses_real_in_g: ClassVar[bool] = False
    """Set it to True when ``g_loss`` needs ``real_out``: algorithms then run the discriminator on the
    step's real batch for the generator's update (one more forward) and pass it; otherwise they pass None."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | None:
        return None


def check_loss(loss, label: str) -> None:
    """A loss's ``g_loss`` must accept ``(fake_out, real_out)``; say so clearly when it does not."""
    method = getattr(loss, "g_loss", None)
    if method is None:
        raise PluginCodeError(f"{label} has no g_loss method", hint="subclass ganforge.AdversarialLoss")
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise PluginCodeError(
            f"{label}: g_loss takes only the fake outputs, but algorithms call g_loss(fake_out, real_out)",
            hint="define `def g_loss(self, fake_out, real_out=None)` (real_out is None unless the loss sets uses_real_in_g)",
        )


class Augmentation:
    """An image augmentation.

    ``stage = "real"``: applied to real batches as they are loaded (classic augmentation, no
    gradient needed, fakes never see it). Every image field of an item (a paired target, say) gets
    the identical transform: the trainer replays the same random draws for each; labels are left
    alone.
    ``stage = "step"``: applied inside the training step to every discriminator input, real and
    fake alike; it must be differentiable so the generator's gradient flows through it.

    Randomness must come from torch's global generator (the trainer seeds and checkpoints it),
    so runs are reproducible and resume exactly.

    Optional, for augmentations that adapt while training (ADA):

    - ``observe(scores)``: receives the discriminator's raw outputs on the step's (augmented) real
      images, detached, each time an algorithm calls ``run.report_real_scores``;
    - ``state_dict()`` / ``load_state_dict(state)``: tensors the trainer stores in every training
      checkpoint and restores on resume;
    - ``log_values()``: scalars added to every logged row (e.g. the current probability).
    """

    stage: ClassVar[str] = "step"

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class Capabilities:
    """What an algorithm can do with a trained checkpoint; `ganforge sample` / `translate` offer
    exactly this (and say so in one line when asked for anything else).

    - ``sample``: draws images from noise (``Algorithm.sample``).
    - ``classes``: can sample a chosen class (the class names come from the dataset's metadata,
      stored in the checkpoint).
    - ``interpolate``: has a latent space to walk (``Algorithm.interpolate``).
    - ``directions``: named translation directions (``Algorithm.translator``), e.g. ``("a2b", "b2a")``.
    - ``sample_inputs``: ``sample`` shows translations of source images (given by the user, or the
      recipe's data) instead of noise samples.
    - ``truncation``: ``sample`` honours ``SampleRequest.truncation`` (the truncation trick: latents
      pulled towards their average, trading variety for fidelity).
    """

    sample: bool = False
    classes: bool = False
    interpolate: bool = False
    directions: tuple[str, ...] = ()
    sample_inputs: bool = False
    truncation: bool = False


@dataclass(frozen=True)
class SampleRequest:
    """What `ganforge sample` asks of an algorithm.

    ``num`` images (or source images), ``seed`` for the noise, ``class_index`` (None: the
    algorithm's default, e.g. one row per class), ``inputs``: source images per domain
    (``{"input": images}`` for the user's own images) when ``Capabilities.sample_inputs``, and
    ``truncation`` in (0, 1] (None: none) when ``Capabilities.truncation``.
    """

    num: int
    seed: int = 0
    class_index: int | None = None
    inputs: dict[str, Tensor] | None = None
    truncation: float | None = None


class Algorithm:
    """A training strategy: which networks it needs and how one step runs.

    Class attributes describe the shape of the run, so the core can build and checkpoint it
    without knowing anything else:

    - ``sections``: recipe section -> component kind, for every component the recipe must name
      (e.g. ``{"generator": "generator", "discriminator": "discriminator", "loss": "loss"}``).
    - ``roles``: network role -> the recipe section it is built from. Two roles may share a
      section (two generators built from one ``[generator]``).
    - ``derived``: networks the algorithm makes itself from a role (an EMA copy) -> the role they
      follow; they are stored for inference with that role's component name and config.
    - ``optimizers``: optimiser group -> roles it updates; the recipe's ``[optim.GROUP]`` sets it.
    - ``domains``: the data domains a step consumes (the dataset must provide them).
    - ``fields``: per domain, the item fields beyond ``image`` a step needs (``{"images": ("label",)}``).

    Every method receives ``run``, a :class:`ganforge.train.run.Run` — the documented interface, and the
    only thing an algorithm may use. The registered builder of an algorithm is its class:
    ``builder(config)`` returns the instance.
    """

    sections: ClassVar[dict[str, str]] = {}
    roles: ClassVar[dict[str, str]] = {}
    derived: ClassVar[dict[str, str]] = {}
    optimizers: ClassVar[dict[str, tuple[str, ...]]] = {}
    domains: ClassVar[tuple[str, ...]] = ("images",)
    fields: ClassVar[dict[str, tuple[str, ...]]] = {}

    def setup(self, run: "Run") -> None:
        """Called once the networks, optimisers and augmentations exist."""

    def train_step(self, run: "Run", batch: "Batch") -> dict[str, float]:
        """One iteration: update the networks and return the scalars to log."""
        raise NotImplementedError

    def after_step(self, run: "Run") -> None:
        """Called after every step (e.g. to update an exponential moving average)."""

    def state_dict(self) -> dict[str, Tensor]:
        """Extra training state (tensors only) that must survive a resume."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        pass

    def callbacks(self, run: "Run") -> list:
        """Step-end work this algorithm adds to the loop (:class:`ganforge.train.callbacks.Callback`
        instances); they run after the built-in ones. Most algorithms add none."""
        return []

    def eval_networks(self, run: "Run") -> dict[str, nn.Module]:
        """Networks to store for inference: roles, and derived networks declared in ``derived``."""
        return {role: run.unwrap(role) for role in self.roles}

    # --- inference: used by progress grids, `ganforge sample` and `ganforge translate`.
    def capabilities(self, data: "DatasetInfo | None") -> Capabilities:
        """What this algorithm can do at inference, given the dataset it was trained on."""
        return Capabilities()

    def translation_fields(self, direction: str) -> tuple[tuple[str, str], tuple[str, str]]:
        """Where `ganforge eval` finds a direction's inputs in the training data and the real images
        its translations should resemble, as ``((domain, field), (domain, field))``. The default
        reads a direction SOURCE2TARGET as two domains (``"a2b"``: images of ``a`` -> images of
        ``b``); paired algorithms override it (e.g. the pairs' ``image`` -> their ``target``)."""
        src, _, dst = direction.partition("2")
        if not src or not dst:
            raise ValueError(f"a direction is SOURCE2TARGET (e.g. a2b), got '{direction}'")
        return (src, "image"), (dst, "image")

    def progress_inputs(self, run: "Run", num: int) -> dict[str, Tensor]:
        """Fixed inputs (noise, or a batch of source images) for the progress grids."""
        raise NotImplementedError

    @torch.no_grad()
    def progress_grid(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Images for a progress grid and the number of columns to lay them out in."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, nets: dict[str, nn.Module], request: SampleRequest) -> tuple[Tensor, int]:
        """Images for `ganforge sample` (and the number of grid columns)."""
        raise NotImplementedError

    @torch.no_grad()
    def interpolate(self, nets: dict[str, nn.Module], seed: int, class_index: int | None = None) -> Tensor:
        """Frames of a walk through the latent space (when ``capabilities().interpolate``)."""
        raise NotImplementedError

    def translator(self, nets: dict[str, nn.Module], direction: str) -> Callable[[Tensor], Tensor]:
        """A function image batch -> translated batch (for a direction in ``capabilities().directions``)."""
        raise NotImplementedError


class Schedule:
    """A learning-rate schedule: ``factor(step, total)`` multiplies an optimiser group's base rate.

    It must be a pure function of the step (no state), so a resumed run continues exactly.
    """

    def factor(self, step: int, total: int) -> float:
        raise NotImplementedError
