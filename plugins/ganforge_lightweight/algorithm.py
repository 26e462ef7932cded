"""The "lightweight" algorithm (Liu et al. 2021, FastGAN): an adversarial loss (the paper: hinge)
plus the self-supervised reconstruction loss of the discriminator's decoders on real images.

Each step: D's update on ``loss.d_loss(D(aug(real)), D(aug(G(z))))`` plus ``recon_weight`` times
the reconstruction loss of the whole (augmented) real image and of one quadrant of it, decoded from
D's own features (see :mod:`ganforge_lightweight.models`); then G's update on
``loss.g_loss(D(aug(G(z))))``. Every D input goes through the run's in-step augmentation
(DiffAugment/ADA), so the reconstruction targets are the *augmented* real images, the ones D saw.

The paper's reconstruction loss is LPIPS, a perceptual distance through a pretrained VGG. No
pretrained network can be downloaded here, so this uses a pixel loss (``recon_loss``: L1, the
default, or MSE) between the reconstructions and the area-downsampled targets. It still forces D
to keep a description of the whole image in its features (the point of the self-supervision, which
curbs D's overfitting on few images); reconstructions come out blurrier than with LPIPS.

EMA of G, sampling and latent interpolation come from the generic "gan" algorithm. The generator
injects per-pixel noise from torch's global RNG, so every inference call here draws it from a
private, seeded copy of that RNG: samples are reproducible for a seed, and drawing a progress grid
or an evaluation mid-run does not disturb training's random stream.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge import Capabilities, RecipeError, SampleRequest
from ganforge.nn import latent_loop
from ganforge_gan import GANAlgorithm
from ganforge_lightweight.models import NoiseInjection


@dataclass(frozen=True)
class LightweightConfig:
    recon_weight: float = 1.0  # weight of D's reconstruction loss on real images (0: decoders not trained)
    recon_loss: Literal["l1", "mse"] = "l1"  # pixel stand-in for the paper's LPIPS
    ema: float = 0.999  # decay of an exponential moving average of G used for sampling (0: off)
    ema_start: int = 0  # step from which the average is updated (before it, it copies G)

    def __post_init__(self):
        if not self.recon_weight >= 0:  # also rejects NaN
            raise ValueError(f"recon_weight must be >= 0, got {self.recon_weight}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.ema_start < 0:
            raise ValueError(f"ema_start must be >= 0, got {self.ema_start}")


@contextlib.contextmanager
def seeded_rng(seed: int):
    """Run the block on a private copy of torch's global RNG (CPU and CUDA), seeded with ``seed``."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def reconstruction_loss(D, real: Tensor, outputs: tuple, kind: str = "l1") -> Tensor:
    """The pixel reconstruction loss for ``outputs = D(real, reconstruct=True)``: whole image plus
    quadrant, each a mean over pixels."""
    _, rec_whole, rec_part, part = outputs
    whole, piece = D.reconstruction_targets(real, part)
    distance = F.l1_loss if kind == "l1" else F.mse_loss
    return distance(rec_whole.float(), whole.float()) + distance(rec_part.float(), piece.float())


class LightweightAlgorithm(GANAlgorithm):
    """Unconditional GAN with a self-supervised (auto-encoding) discriminator, EMA of G."""

    config: LightweightConfig

    def setup(self, run) -> None:
        super().setup(run)  # checks G maps noise to images, makes the EMA copy
        disc = run.unwrap("discriminator")
        if "reconstruct" not in inspect.signature(disc.forward).parameters or not hasattr(disc, "reconstruction_targets"):
            raise RecipeError(
                f"the 'lightweight' algorithm trains a self-supervised discriminator, one with "
                f"forward(x, reconstruct=True) and reconstruction_targets(); {type(disc).__name__} is not",
                hint="use [discriminator] name = \"lightweight\"",
            )

    def train_step(self, run, batch):
        G, D = run.nets["generator"], run.nets["discriminator"]
        disc = run.unwrap("discriminator")
        opt_g, opt_d = run.optimizers["generator"], run.optimizers["discriminator"]
        loss = run.components["loss"]
        real = batch["images"]

        # --- discriminator: adversarial loss + reconstruction of the real images it saw
        z = torch.randn(real.size(0), self.noise_size, device=run.device)
        fake = G(z)
        real_in, fake_in = run.augment(real), run.augment(fake.detach())  # detach: D's update must not reach G
        d_fake = D(fake_in)
        # Between them the two forwards reach every weight of D (the decoders through the real
        # one), as DDP expects of a backward.
        outputs = D(real_in, reconstruct=True)
        d_real = outputs[0]
        run.report_real_scores(d_real)
        loss_adv = loss.d_loss(d_real, d_fake)
        penalty = loss.penalty(D, real_in, fake_in)
        if penalty is not None:
            loss_adv = loss_adv + penalty
        # The targets are the augmented reals: what D encoded. Computed even at weight 0, so the
        # decoders always take part in the backward (and the loss is logged).
        loss_rec = reconstruction_loss(disc, real_in, outputs, self.config.recon_loss)
        opt_d.zero_grad(set_to_none=True)
        run.backward(loss_adv + self.config.recon_weight * loss_rec)
        opt_d.step()

        # --- generator. D is frozen meanwhile: its decoders take no part in this forward, and
        # under DDP a backward reaching only some of D's weights fails the next step.
        disc.requires_grad_(False)
        try:
            real_out = D(run.augment(real)) if loss.uses_real_in_g else None
            loss_g = loss.g_loss(D(run.augment(fake)), real_out)
            opt_g.zero_grad(set_to_none=True)
            run.backward(loss_g)
        finally:
            disc.requires_grad_(True)
        opt_g.step()
        return {"d_loss": loss_adv.item(), "recon_loss": loss_rec.item(), "g_loss": loss_g.item()}

    # --- inference: as the "gan" algorithm, with the generator's injected noise seeded ----------
    def capabilities(self, data=None):
        return Capabilities(sample=True, interpolate=True)

    def progress_inputs(self, run, num):
        inputs = super().progress_inputs(run, num)
        inputs["seed"] = torch.tensor(run.seed)
        return inputs

    @torch.no_grad()
    def progress_grid(self, nets, inputs):
        with seeded_rng(int(inputs["seed"])):  # the same noise maps at every grid
            return super().progress_grid(nets, {"z": inputs["z"]})

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        with seeded_rng(request.seed):
            return super().sample(nets, request)

    @torch.no_grad()
    def interpolate(self, nets, seed, class_index=None, num_points=4, frames=16):
        """A closed loop through ``num_points`` random latents (spherical interpolation); one
        noise map for every frame, so only the latent moves."""
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        g = torch.Generator().manual_seed(seed)
        z = latent_loop(torch.randn(num_points, int(gen.noise_size), generator=g), frames)
        # A generator with injected noise (this family's) gets one noise map for all frames.
        shared = {"shared_noise": True} if "shared_noise" in inspect.signature(gen.forward).parameters else {}
        out = []
        for chunk in z.split(64):
            with seeded_rng(seed):  # re-seeded per chunk: the same noise maps in every chunk
                out.append(gen(chunk.to(device), **shared).float().clamp(-1, 1).cpu())
        return torch.cat(out)

    def export_networks(self, nets, capabilities, data=None):
        """As the "gan" algorithm, with the generator's injected noise made fixed: one map per layer
        drawn from seed 0 and shared by every image (a graph cannot replay torch's random stream,
        and the export is checked against PyTorch on the same inputs)."""
        note = {"noise": "fixed per-layer noise maps drawn from seed 0, shared by every image"}
        return [dataclasses.replace(spec, module=fixed_noise(spec.module, seed=0), notes={**spec.notes, **note})
                for spec in super().export_networks(nets, capabilities, data)]


class FixedNoise(nn.Module):
    """``x + weight * noise`` with one stored noise map ``[1, 1, H, W]`` (what export puts in place
    of a :class:`NoiseInjection`)."""

    def __init__(self, weight: Tensor, noise: Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.register_buffer("noise", noise)

    def forward(self, x: Tensor, shared: bool = False) -> Tensor:
        return x + self.weight * self.noise.to(x.dtype)


@torch.no_grad()
def fixed_noise(gen: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``gen`` whose noise injections add fixed maps, drawn from ``seed`` at the size each
    layer sees (found by one forward pass)."""
    gen = copy.deepcopy(gen)
    sizes: dict[str, tuple[int, int]] = {}

    def seen(name):
        def hook(module, args):
            sizes.setdefault(name, tuple(args[0].shape[-2:]))  # returns None: the inputs stay as they are
        return hook

    hooks = [m.register_forward_pre_hook(seen(name)) for name, m in gen.named_modules() if isinstance(m, NoiseInjection)]
    try:
        gen(torch.zeros(1, int(gen.noise_size), device=next(gen.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    g = torch.Generator().manual_seed(seed)
    for name in sorted(sizes):
        parent_name, _, child = name.rpartition(".")
        parent = gen.get_submodule(parent_name)
        old = getattr(parent, child)
        noise = torch.randn(1, 1, *sizes[name], generator=g).to(old.weight.device)
        setattr(parent, child, FixedNoise(old.weight, noise))
    return gen


__all__ = ["FixedNoise", "LightweightAlgorithm", "LightweightConfig", "fixed_noise", "reconstruction_loss", "seeded_rng"]
