"""The "gan" algorithm: noise-to-image training with alternating D and G updates.

Variants extend it through three hooks instead of copying its step: :meth:`GANAlgorithm.condition`
(what G and D receive besides noise and images, e.g. class labels), :meth:`GANAlgorithm.generate`
and :meth:`GANAlgorithm.discriminate`. The conditional ``cgan`` algorithm is this class with those
three overridden.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganforge import Algorithm, Capabilities, RecipeError, SampleRequest
from ganforge.nn import grid_columns, latent_loop


@dataclass(frozen=True)
class GANConfig:
    d_steps: int = 1  # discriminator updates per generator update
    ema: float = 0.0  # decay of an exponential moving average of G used for sampling (0: off)
    ema_start: int = 0  # step from which the average is updated (before it, it copies G)
    log_wasserstein: bool = False  # log mean D(real) - mean D(fake) of the last D update as `wasserstein`
    # (under a WGAN loss: the critic's estimate of the Wasserstein-1 distance)

    def __post_init__(self):
        if self.d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {self.d_steps}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")


class GANAlgorithm(Algorithm):
    sections = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}
    roles = {"generator": "generator", "discriminator": "discriminator"}
    # Separate groups give D and G their own learning rates (TTUR).
    optimizers = {"generator": ("generator",), "discriminator": ("discriminator",)}
    domains = ("images",)
    derived = {"generator_ema": "generator"}  # the EMA copy is stored as a generator

    def __init__(self, config: GANConfig):
        self.config = config
        self.ema: nn.Module | None = None

    def setup(self, run) -> None:
        gen = run.unwrap("generator")
        if not hasattr(gen, "noise_size"):
            raise RecipeError(
                f"the 'gan' algorithm needs a noise-to-image generator (one with a `noise_size`); "
                f"{type(gen).__name__} maps images to images",
                hint="choose a noise-to-image generator in [generator] (`ganforge plugins` lists them)",
            )
        self.noise_size = int(gen.noise_size)
        if self.config.ema > 0:
            # The average lives outside DDP/autocast wrappers: it is only ever used for sampling.
            self.ema = copy.deepcopy(gen).requires_grad_(False)

    # --- the hooks a variant overrides -----------------------------------------------------------
    def condition(self, batch) -> Any:
        """What G and D receive besides noise and images for this batch (None: nothing)."""
        return None

    def generate(self, G, z, condition):
        """Fakes from noise ``z`` (and the batch's ``condition``)."""
        return G(z)

    def discriminate(self, D, images, condition):
        """D's raw scores for ``images`` (and the batch's ``condition``)."""
        return D(images)

    # --- one step ----------------------------------------------------------------------------------
    def train_step(self, run, batch):
        G, D = run.nets["generator"], run.nets["discriminator"]
        opt_g, opt_d = run.optimizers["generator"], run.optimizers["discriminator"]
        loss = run.components["loss"]
        for i in range(self.config.d_steps):
            if i > 0:
                batch = run.next_batch()
            real, cond = batch["images"], self.condition(batch)
            # Fakes of the same condition as the real batch (a cgan's G sees the data's class frequencies).
            z = torch.randn(real.size(0), self.noise_size, device=run.device)
            fake = self.generate(G, z, cond)
            real_in, fake_in = run.augment(real), run.augment(fake.detach())  # detach: D's update must not reach G

            def critic(x, cond=cond):
                return self.discriminate(D, x, cond)

            d_real, d_fake = critic(real_in), critic(fake_in)
            run.report_real_scores(d_real)  # adaptive augmentation (ADA) tunes itself from these
            loss_d = loss.d_loss(d_real, d_fake)
            penalty = loss.penalty(critic, real_in, fake_in)
            if penalty is not None:
                loss_d = loss_d + penalty
            opt_d.zero_grad(set_to_none=True)
            run.backward(loss_d)
            opt_d.step()
        logs = {"wasserstein": (d_real.float().mean() - d_fake.float().mean()).item()} if self.config.log_wasserstein else {}
        # Same augmentation policy on the fakes G is judged on, so G cannot learn the augmentation.
        real_out = critic(run.augment(real)) if loss.uses_real_in_g else None
        loss_g = loss.g_loss(critic(run.augment(fake)), real_out)
        opt_g.zero_grad(set_to_none=True)
        run.backward(loss_g)
        opt_g.step()
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(), **logs}

    @torch.no_grad()
    def after_step(self, run) -> None:
        if self.ema is None:
            return
        gen = run.unwrap("generator")
        decay = self.config.ema if run.step >= self.config.ema_start else 0.0
        for e, p in zip(self.ema.parameters(), gen.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(self.ema.buffers(), gen.buffers()):
            e.copy_(b)  # BatchNorm statistics follow G

    def state_dict(self):
        return {f"ema.{k}": v for k, v in self.ema.state_dict().items()} if self.ema is not None else {}

    def load_state_dict(self, state) -> None:
        if self.ema is not None:
            self.ema.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("ema.")})

    def eval_networks(self, run):
        nets = {"generator": run.unwrap("generator")}
        if self.ema is not None:
            nets["generator_ema"] = self.ema
        return nets

    # --- inference ----------------------------------------------------------------------------
    @staticmethod
    def _sampler(nets):
        return nets.get("generator_ema", nets["generator"])

    def capabilities(self, data=None):
        return Capabilities(sample=True, interpolate=True)

    def progress_inputs(self, run, num):
        g = torch.Generator().manual_seed(run.seed)
        return {"z": torch.randn(num, self.noise_size, generator=g)}

    @torch.no_grad()
    def progress_grid(self, nets, inputs):
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        z = inputs["z"].to(device)
        return gen(z).float().clamp(-1, 1), grid_columns(len(z))

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        num = request.num
        g = torch.Generator().manual_seed(request.seed)
        z = torch.randn(num, int(gen.noise_size), generator=g)
        out = [gen(chunk.to(device)).float().clamp(-1, 1).cpu() for chunk in z.split(64)]
        return torch.cat(out), grid_columns(num)

    @torch.no_grad()
    def interpolate(self, nets, seed, class_index=None, num_points=4, frames=16):
        """Frames walking a closed loop through ``num_points`` random latents (spherical interpolation)."""
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        g = torch.Generator().manual_seed(seed)
        z = latent_loop(torch.randn(num_points, int(gen.noise_size), generator=g), frames)
        return torch.cat([gen(c.to(device)).float().clamp(-1, 1).cpu() for c in z.split(64)])

