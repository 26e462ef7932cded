"""The interfaces components implement. The core only ever talks to these, never to a family.

Conventions shared by every plugin:

- Images are float tensors ``[B, 3, H, W]`` in ``[-1, 1]``.
- A noise-to-image generator exposes ``noise_size`` (an int) and maps ``[B, noise_size]`` to images.
- An image-to-image generator maps images to images of the same size.
- A discriminator maps images to raw scores of any shape ``[B, ...]`` (a scalar per image, or a grid
  of patch scores); losses reduce them. One that sees several images at once (a pix2pix input and
  output, concatenated) says how many channels it takes in ``in_channels``.
- A class-conditional network exposes ``num_classes`` (an int) and its forward takes the class
  labels (``int64 [B]``) as a second argument: ``G(z, labels)``, ``D(images, labels)``. Recipes
  need not set ``num_classes``: a config field of that name follows the data's number of classes.
- A network whose forward returns several tensors sets the class attribute
  ``multiple_outputs = True`` and returns a tuple whose **first** element is its main output (a
  generator's images, a discriminator's real/fake scores ``[B, ...]``); every element has the batch
  size first. A discriminator with two heads — real/fake logits and class logits (AC-GAN) — returns
  ``(scores [B, ...], class_logits [B, num_classes])``. It takes only the images: its config may
  have a ``num_classes`` option (which follows the data), but the module has no ``num_classes``
  attribute, which would mark it class-conditional (taking labels). The algorithm unpacks the
  tuple: losses and ``run.report_real_scores`` get the first element only. The trainer checks, on the
  first step, that every network returns a tensor (the first element of such a tuple), and that a
  generator returns images at the data's size (a noise-to-image one) or at its input's size (an
  image-to-image one), naming the component that does not.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar

import torch
from torch import Tensor, nn

from ganforge.core.errors import ExportError, PluginCodeError

if TYPE_CHECKING:  # documentation only: the core's run interface
    from ganforge.data.items import Batch, DatasetInfo
    from ganforge.train.run import Run


class AdversarialLoss(nn.Module):
    """An adversarial objective over raw discriminator outputs.

    ``d_loss(real_out, fake_out)``: the discriminator's loss. ``g_loss(fake_out, real_out)``: the
    generator's loss; ``real_out`` (the current D's outputs on the step's real batch when the loss
    sets ``uses_real_in_g``, else ``None``) lets relativistic losses be exact without keeping state.
    Both return a scalar tensor that the algorithm back-propagates. The outputs are the
    discriminator's real/fake scores ``[B, ...]`` as it returned them (in the autocast dtype under
    mixed precision: compute in float32, ``out.float()``); a discriminator with several outputs
    (``multiple_outputs``) hands a loss only its first, the real/fake scores — an auxiliary class
    loss is the algorithm's own business.

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


@dataclass(frozen=True)
class ExportInput:
    """One input of an exported network (`ganforge export`).

    ``name`` is the graph input's name; ``shape`` its shape without the batch dimension; ``kind``
    says what it holds, which also fixes its type and the values `ganforge export` checks the export
    on: ``"noise"`` (float32 drawn from a standard normal), ``"label"`` (int64 class indices below
    ``classes``, shape ``()``) or ``"image"`` (float32 ``[3, H, W]`` in ``[-1, 1]``).
    """

    name: str
    shape: tuple[int, ...]
    kind: str = "noise"
    classes: int = 0


@dataclass(frozen=True)
class ExportSpec:
    """A network as `ganforge export` writes it: one ONNX graph, ``module(*inputs) -> images``.

    - ``name``: what it is, ``"generator"`` or a translation direction (``"a2b"``); a model with
      several networks is written to one file per name.
    - ``module``: an ``nn.Module`` in evaluation mode whose ``forward`` takes the ``inputs`` in
      order (batch first) and returns one float tensor of images ``[B, 3, H, W]``. It must be
      deterministic: a generator that injects random noise takes it as an input or holds fixed
      noise (the export is checked against PyTorch on the same inputs). ganforge clamps the output
      to ``[-1, 1]`` and, for ``--class``, fixes a ``label`` input itself.
    - ``inputs``: the :class:`ExportInput` of each forward argument, in order.
    - ``output``: the name of the graph's output.
    - ``notes``: facts a user of the file needs (``{"noise": "fixed maps"}``), stored in its metadata.
    """

    name: str
    module: nn.Module
    inputs: tuple[ExportInput, ...]
    output: str = "images"
    notes: dict[str, str] = field(default_factory=dict)


class _Translate(nn.Module):
    """An algorithm's translator as a module: the networks it uses are registered, so their weights
    travel with the graph."""

    def __init__(self, nets: dict[str, nn.Module], fn: Callable[[Tensor], Tensor]):
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        self.fn = fn

    def forward(self, images: Tensor) -> Tensor:
        return self.fn(images)


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

    Training and evaluation mode: the trainer builds every network in training mode and leaves it
    there for ``setup``, ``train_step`` and ``after_step`` (an algorithm that wants a network in
    evaluation mode inside a step switches it and back itself). Around every progress grid and every
    score during training it puts the networks of ``eval_networks`` in evaluation mode and, after,
    back into the mode each was in. Networks loaded for `ganforge sample`, `translate` and `eval`
    are in evaluation mode. So ``progress_grid``, ``sample``, ``interpolate`` and ``translator``
    always get networks in evaluation mode and never switch modes themselves.

    Learning rates: before every step the trainer sets each optimiser group's rate to its
    ``[optim.GROUP] lr`` times its own :class:`Schedule` factor (times a scale that NaN rollbacks
    lower); algorithms never set rates. The metrics log's ``lr_factor`` is that of the first group in
    ``optimizers`` (the generator's, for every built-in algorithm); the other groups follow their own
    schedules and are not logged.
    """

    sections: ClassVar[dict[str, str]] = {}
    roles: ClassVar[dict[str, str]] = {}
    derived: ClassVar[dict[str, str]] = {}
    optimizers: ClassVar[dict[str, tuple[str, ...]]] = {}
    domains: ClassVar[tuple[str, ...]] = ("images",)
    fields: ClassVar[dict[str, tuple[str, ...]]] = {}

    def setup(self, run: "Run") -> None:
        """Called once the networks, optimisers and augmentations exist (before a resumed run's
        state is restored), with the networks in training mode."""

    def train_step(self, run: "Run", batch: "Batch") -> dict[str, float]:
        """One iteration: update the networks and return the scalars to log (``{name: number}``).

        ``batch`` holds the next real items of every domain in ``domains`` (:class:`Batch`); call
        ``run.next_batch()`` for more (several discriminator updates). The networks
        (``run.nets``) are in training mode, and every group's learning rate is already set for this
        step. ``run.step`` is the number of steps done before this one (0 on the first). A network
        with ``multiple_outputs`` returns a tuple: pass its first element (the real/fake scores) to
        the loss and to ``run.report_real_scores``."""
        raise NotImplementedError

    def after_step(self, run: "Run") -> None:
        """Called after every step that is kept (e.g. to update an exponential moving average);
        ``run.step`` still counts the steps before it."""

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
        """Networks to store for inference: roles, and derived networks declared in ``derived``.

        Plain modules (``run.unwrap(role)``, not the wrapped ``run.nets``). The trainer calls it at
        every checkpoint (to store their weights), and for every progress grid and score during
        training, where it passes the result to ``progress_grid`` / ``sample`` after putting each
        module in evaluation mode, and restores each module's mode afterwards: return the modules
        themselves (not copies switched to evaluation mode), in whatever mode training keeps them."""
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
        """Fixed inputs (noise, or a batch of source images) for the progress grids: ``num`` is
        ``log.num_samples``. Called once when training starts (and again when a run resumes), on the
        main process only; the same inputs then serve every grid, so the grids show progress.
        Tensors on the CPU (``progress_grid`` moves them to its networks' device)."""
        raise NotImplementedError

    @torch.no_grad()
    def progress_grid(self, nets: dict[str, nn.Module], inputs: dict[str, Tensor]) -> tuple[Tensor, int]:
        """Images for a progress grid and the number of columns to lay them out in.

        ``nets`` is what ``eval_networks`` returns, in evaluation mode (the trainer switches them and
        back); ``inputs`` what ``progress_inputs`` returned. Returns ``(images, columns)``: a float
        tensor ``[N, 3, H, W]`` with values in ``[-1, 1]`` (clamp them), on any device (the trainer
        moves it to the CPU), and the number of grid columns. Called every ``log.sample_every`` steps
        and at the last step, on the main process. Decorate an override with ``@torch.no_grad()``:
        callers do not switch gradients off for you."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, nets: dict[str, nn.Module], request: SampleRequest) -> tuple[Tensor, int]:
        """Images for `ganforge sample`, `ganforge eval` and scores during training, and the number
        of grid columns.

        ``nets`` are the networks ``eval_networks`` stores (loaded from a checkpoint, or the
        training ones), in evaluation mode, on one device (move inputs to
        ``next(net.parameters()).device``). Returns ``(images, columns)``: a float tensor
        ``[N, 3, H, W]`` with values in ``[-1, 1]`` (clamp them), preferably on the CPU, where
        ``N >= request.num``: ``request.num`` images, or more when each sample shows several (one
        row per class, a source beside its translation); evaluation scores the first
        ``request.num``. The same ``request.seed`` must give the same images. Decorate an override
        with ``@torch.no_grad()``: not every caller switches gradients off."""
        raise NotImplementedError

    @torch.no_grad()
    def interpolate(self, nets: dict[str, nn.Module], seed: int, class_index: int | None = None) -> Tensor:
        """Frames of a walk through the latent space (when ``capabilities().interpolate``), for
        `ganforge sample --interpolate` (a GIF, one frame per image).

        ``nets`` as for ``sample`` (evaluation mode). Returns a float tensor ``[F, 3, H, W]`` with
        values in ``[-1, 1]``, preferably on the CPU: frame ``f`` is ``images[f]`` (a frame may be
        wider than one image, e.g. every class side by side). ``seed`` picks the walk;
        ``class_index`` (None: the algorithm's default) a class for class-conditional models."""
        raise NotImplementedError

    def translator(self, nets: dict[str, nn.Module], direction: str) -> Callable[[Tensor], Tensor]:
        """A function image batch -> translated batch (for a direction in ``capabilities().directions``).

        ``nets`` as for ``sample`` (evaluation mode). The function gets images ``[B, 3, H, W]`` in
        ``[-1, 1]`` on the networks' device, under ``torch.no_grad()``, and returns images of the
        same shape in ``[-1, 1]``."""
        raise NotImplementedError

    def export_networks(self, nets: dict[str, nn.Module], capabilities: Capabilities,
                        data: "DatasetInfo | None" = None) -> list[ExportSpec]:
        """The networks `ganforge export` writes, as :class:`ExportSpec` (one ONNX file each).

        ``nets`` as for ``sample`` (evaluation mode, on the CPU); ``capabilities`` what
        ``capabilities(data)`` declared; ``data`` the stored dataset description (image size, class
        names). The default builds them from the capabilities:

        - ``directions``: one image-to-image graph per direction, from ``translator`` (input
          ``source``, images ``[B, 3, S, S]`` at the data's image size ``S``);
        - ``sample`` from noise: the noise-to-image generator (a network with ``noise_size``; a
          network declared in ``derived``, such as an EMA copy, before the roles), taking ``z``
          ``[B, noise_size]`` and, when ``classes`` and it has ``num_classes``, ``labels`` ``[B]``.

        Override it when inference needs more than a plain forward (fixed noise, a mapping network)
        or the model is not meant to leave ganforge; raise :class:`ganforge.core.errors.ExportError`
        naming what cannot be exported."""
        if capabilities.directions:
            size = data.image_size if data is not None else None
            if not size:
                raise ExportError("the checkpoint does not say which image size its translation networks take",
                                  hint="it was written by another tool or a damaged run; retrain it")
            image = ExportInput("source", (3, int(size), int(size)), "image")
            return [ExportSpec(d, _Translate(nets, self.translator(nets, d)), (image,)) for d in capabilities.directions]
        if capabilities.sample and not capabilities.sample_inputs:
            names = [n for n in nets if n in self.derived] + [n for n in nets if n not in self.derived]
            gen = next((nets[n] for n in names if hasattr(nets[n], "noise_size")), None)
            if gen is None:
                raise ExportError(f"none of the networks {', '.join(nets)} maps noise to images (has a noise_size)",
                                  hint="the algorithm must override Algorithm.export_networks")
            inputs = [ExportInput("z", (int(gen.noise_size),), "noise")]
            if capabilities.classes and getattr(gen, "num_classes", None):
                inputs.append(ExportInput("labels", (), "label", classes=int(gen.num_classes)))
            return [ExportSpec("generator", gen, tuple(inputs))]
        raise ExportError("the algorithm declares neither sampling from noise nor translation directions",
                          hint="it must override Algorithm.export_networks to say what to export")


class Schedule:
    """A learning-rate schedule: ``factor(step, total)`` multiplies an optimiser group's base rate.

    Before every training step the trainer sets each group's rate to
    ``lr * factor(step, total) * scale``: ``step`` counts from 0 (the steps done before this one:
    the first update uses ``factor(0, total)``, the last ``factor(total - 1, total)``), ``total`` is
    ``train.steps``, and ``scale`` starts at 1 and is lowered by NaN rollbacks (not the schedule's
    business). The factor is also read again for the metrics log, so it must be a pure function of
    its arguments (no state): that is also what lets a resumed run continue exactly.

    Warm-up is the schedule's own: the core has none. The built-in schedules (``constant``,
    ``linear``, ``cosine``) take ``warmup`` (steps) and multiply their factor by
    ``min(1, (step + 1) / warmup)``: the first update runs at ``1 / warmup`` of the rate, update
    ``warmup - 1`` (0-based) and later ones at the full rate.

    Each optimiser group has its own schedule (``[optim.GROUP.schedule]``); the logged
    ``lr_factor`` is ``factor * scale`` of the first group the algorithm declares in
    ``optimizers`` (the generator's, for every built-in algorithm). Other groups are not logged.
    """

    def factor(self, step: int, total: int) -> float:
        """The multiplier of the group's base rate for update ``step`` (0-based) of ``total``:
        a finite number ``>= 0``, a pure function of its arguments."""
        raise NotImplementedError
