"""The "gan" algorithm: unconditional noise-to-image training with alternating D and G updates."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from ganforge.core.components import Algorithm, Capabilities, SampleRequest
from ganforge.core.errors import RecipeError


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

    def train_step(self, run, batch):
        G, D = run.nets["generator"], run.nets["discriminator"]
        opt_g, opt_d = run.optimizers["generator"], run.optimizers["discriminator"]
        loss = run.components["loss"]
        real = batch["images"]
        for i in range(self.config.d_steps):
            if i > 0:
                real = run.next_batch()["images"]
            z = torch.randn(real.size(0), self.noise_size, device=run.device)
            fake = G(z)
            real_in, fake_in = run.augment(real), run.augment(fake.detach())  # detach: D's update must not reach G
            d_real, d_fake = D(real_in), D(fake_in)
            run.report_real_scores(d_real)  # adaptive augmentation (ADA) tunes itself from these
            loss_d = loss.d_loss(d_real, d_fake)
            penalty = loss.penalty(D, real_in, fake_in)
            if penalty is not None:
                loss_d = loss_d + penalty
            opt_d.zero_grad(set_to_none=True)
            run.backward(loss_d)
            opt_d.step()
        logs = {"wasserstein": (d_real.float().mean() - d_fake.float().mean()).item()} if self.config.log_wasserstein else {}
        # Same augmentation policy on the fakes G is judged on, so G cannot learn the augmentation.
        real_out = D(run.augment(real)) if loss.uses_real_in_g else None
        loss_g = loss.g_loss(D(run.augment(fake)), real_out)
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
        return gen(z).float().clamp(-1, 1), _columns(len(z))

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        num = request.num
        g = torch.Generator().manual_seed(request.seed)
        z = torch.randn(num, int(gen.noise_size), generator=g)
        out = [gen(chunk.to(device)).float().clamp(-1, 1).cpu() for chunk in z.split(64)]
        return torch.cat(out), _columns(num)

    @torch.no_grad()
    def interpolate(self, nets, seed, class_index=None, num_points=4, frames=16):
        """Frames walking a closed loop through ``num_points`` random latents (spherical interpolation)."""
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        g = torch.Generator().manual_seed(seed)
        points = torch.randn(num_points, int(gen.noise_size), generator=g)
        zs = []
        for a, b in zip(points, points.roll(-1, 0)):
            for t in torch.linspace(0, 1, frames + 1)[:-1]:
                zs.append(_slerp(a, b, float(t)))
        z = torch.stack(zs)
        return torch.cat([gen(c.to(device)).float().clamp(-1, 1).cpu() for c in z.split(64)])


def _slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.acos(cos)
    if omega.abs() < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def _columns(n: int) -> int:
    return max(1, int(math.ceil(math.sqrt(n))))
