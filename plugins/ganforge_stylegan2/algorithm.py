"""The "stylegan2" algorithm: StyleGAN2 training (Karras et al. 2020) on the dcgan plugin's GAN loop.

Per step: one discriminator update, then one generator update, with

- the recipe's adversarial loss (the paper: "vanilla", the non-saturating logistic loss);
- lazy R1: every ``r1_every`` steps the D update adds ``r1_gamma / 2 * E|grad_x D(x)|^2`` on the
  real images (gradient taken w.r.t. the images *before* the in-step augmentation), multiplied by
  ``r1_every`` so that on average it weighs as much as an R1 term at every step;
- lazy path-length regularisation (``pl_weight`` > 0): every ``pl_every`` steps the G update adds
  ``pl_weight * pl_every * E(|J_w^T y| - a)^2``, with y random images scaled by 1/sqrt(pixels) and
  ``a`` (``pl_mean``) a running mean of the lengths;
- style mixing (``style_mixing``: the probability per image that its layers switch to a second
  latent at a random cutoff);
- an exponential moving average of G's weights (``ema``: decay per step, with a ramp-up: the
  average's half-life, in steps, is at most ``ema_rampup`` times the steps taken so far, as in the
  paper's code), used for progress grids, sampling and evaluation.

The combined variant of lazy regularisation is used: a regulariser is added to the same optimiser
step as the main loss on the steps it runs (the paper's code takes a separate step instead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganforge import Capabilities, ExportInput, ExportSpec, RecipeError, SampleRequest
from ganforge.nn import grid_columns
from ganforge_gan import GANAlgorithm


@dataclass(frozen=True)
class StyleGAN2Config:
    # R1 weight. The paper's heuristic: gamma = 0.0002 * resolution^2 / batch size
    # (64 px at batch 16: 0.0512; 128 px at batch 32: 0.1024); 0 turns R1 off.
    r1_gamma: float = 0.05
    r1_every: int = 16  # lazy R1: steps between penalties (scaled by this interval)
    pl_weight: float = 0.0  # path-length regularisation weight (the paper: 2; 0: off)
    pl_every: int = 4  # lazy path-length regularisation interval
    pl_decay: float = 0.01  # rate of the running mean of path lengths
    style_mixing: float = 0.9  # probability of mixing two latents per generated image
    ema: float = 0.998  # decay per step of the moving average of G (0: off); 0.998 at batch 16 is a
    # half-life of ~350 steps (~5.5k images, close to the paper's few-shot setting of batch * 10/32 kimg)
    ema_rampup: float = 0.05  # cap the EMA half-life at this fraction of the steps taken (0: no ramp-up)

    def __post_init__(self):
        if not self.r1_gamma >= 0:
            raise ValueError(f"r1_gamma must be >= 0, got {self.r1_gamma}")
        for key in ("r1_every", "pl_every"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if not self.pl_weight >= 0:
            raise ValueError(f"pl_weight must be >= 0, got {self.pl_weight}")
        if not 0.0 < self.pl_decay <= 1.0:
            raise ValueError(f"pl_decay must be in (0, 1], got {self.pl_decay}")
        if not 0.0 <= self.style_mixing <= 1.0:
            raise ValueError(f"style_mixing must be in [0, 1], got {self.style_mixing}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if not self.ema_rampup >= 0:
            raise ValueError(f"ema_rampup must be >= 0, got {self.ema_rampup}")


class StyleGAN2Algorithm(GANAlgorithm):
    """Noise-to-image training with a StyleGAN2-style generator (one with ``mapping`` and
    ``synthesis``); see the module docstring. State: the EMA generator, ``pl_mean`` and the last
    R1 value (logged at every step)."""

    def __init__(self, config: StyleGAN2Config):
        super().__init__(config)
        self.pl_mean = torch.zeros([])
        self.last_r1 = torch.zeros([])

    def setup(self, run) -> None:
        gen = run.unwrap("generator")
        missing = [m for m in ("mapping", "synthesis", "num_ws") if not hasattr(gen, m)]
        if missing:
            raise RecipeError(
                f"the 'stylegan2' algorithm needs a generator with a mapping network (mapping, synthesis, num_ws); "
                f"{type(gen).__name__} has no {', '.join(missing)}",
                hint='use [generator] name = "stylegan2", or the "gan" algorithm for other generators',
            )
        super().setup(run)
        self.pl_mean = torch.zeros([], device=run.device)
        self.last_r1 = torch.zeros([], device=run.device)

    # --- training -------------------------------------------------------------------------------
    def train_step(self, run, batch):
        cfg = self.config
        G, D = run.nets["generator"], run.nets["discriminator"]
        opt_g, opt_d = run.optimizers["generator"], run.optimizers["discriminator"]
        loss = run.components["loss"]
        real = batch["images"]
        n = real.size(0)

        # Discriminator. G runs without a graph (D's update never reaches it); this pass also
        # updates G's tracked w_avg.
        with torch.no_grad():
            z = torch.randn(n, self.noise_size, device=run.device)
            fake = G(z, mix_prob=cfg.style_mixing, clamp=False, update_w_avg=True)
        do_r1 = cfg.r1_gamma > 0 and run.step % cfg.r1_every == 0
        real_x = real.detach().requires_grad_(do_r1)
        real_in, fake_in = run.augment(real_x), run.augment(fake)
        d_real, d_fake = D(real_in), D(fake_in)
        run.report_real_scores(d_real)  # adaptive augmentation (ADA) tunes itself from these
        loss_d = loss.d_loss(d_real, d_fake)
        penalty = loss.penalty(D, real_in.detach(), fake_in)
        if penalty is not None:
            loss_d = loss_d + penalty
        if do_r1:
            # R1: squared gradient norm of D's output w.r.t. the real images (through the augmentation).
            (grad,) = torch.autograd.grad(d_real.float().sum(), real_x, create_graph=True)
            r1 = grad.float().square().sum(dim=(1, 2, 3)).mean()
            loss_d = loss_d + r1 * (cfg.r1_gamma / 2 * cfg.r1_every)
            self.last_r1 = r1.detach().clone()
        opt_d.zero_grad(set_to_none=True)
        run.backward(loss_d)
        opt_d.step()

        # Generator.
        do_pl = cfg.pl_weight > 0 and run.step % cfg.pl_every == 0
        z = torch.randn(n, self.noise_size, device=run.device)
        out = G(z, mix_prob=cfg.style_mixing, clamp=False, return_ws=do_pl)
        fake, ws = out if do_pl else (out, None)
        real_out = D(run.augment(real)) if loss.uses_real_in_g else None
        loss_g = loss.g_loss(D(run.augment(fake)), real_out)
        if do_pl:
            loss_g = loss_g + self._path_length_penalty(fake, ws) * (cfg.pl_weight * cfg.pl_every)
        opt_g.zero_grad(set_to_none=True)
        run.backward(loss_g)
        opt_g.step()

        logs = {"d_loss": loss_d.item(), "g_loss": loss_g.item()}
        if cfg.r1_gamma > 0:
            logs["r1"] = self.last_r1.item()  # of the latest R1 step
        if cfg.pl_weight > 0:
            logs["pl_mean"] = self.pl_mean.item()
        return logs

    def _path_length_penalty(self, fake: Tensor, ws: Tensor) -> Tensor:
        """(|J_w^T y| - a)^2 for y ~ N(0, I) / sqrt(pixels): small when a fixed-size step in w moves
        the image by a fixed amount whatever the direction (a well-conditioned, smoother G)."""
        height, width = fake.shape[2], fake.shape[3]
        y = torch.randn_like(fake) / math.sqrt(height * width)
        (grad,) = torch.autograd.grad((fake * y).float().sum(), ws, create_graph=True)
        lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()  # [B]
        self.pl_mean = self.pl_mean.lerp(lengths.detach().mean(), self.config.pl_decay)
        return (lengths - self.pl_mean).square().mean()

    @torch.no_grad()
    def after_step(self, run) -> None:
        if self.ema is None:
            return
        gen = run.unwrap("generator")
        half_life = math.log(0.5) / math.log(self.config.ema)  # in steps
        if self.config.ema_rampup > 0:
            half_life = min(half_life, self.config.ema_rampup * (run.step + 1))
        decay = 0.5 ** (1.0 / half_life) if half_life > 0 else 0.0
        for e, p in zip(self.ema.parameters(), gen.parameters()):
            e.lerp_(p.detach(), 1.0 - decay)
        for e, b in zip(self.ema.buffers(), gen.buffers()):
            e.copy_(b)  # w_avg (and the constant noise images) follow G

    def state_dict(self):
        return {**super().state_dict(), "pl_mean": self.pl_mean.detach().clone(),
                "last_r1": self.last_r1.detach().clone()}

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        device = self.pl_mean.device
        if "pl_mean" in state:
            self.pl_mean = state["pl_mean"].to(device=device, dtype=torch.float32).clone()
        if "last_r1" in state:
            self.last_r1 = state["last_r1"].to(device=device, dtype=torch.float32).clone()

    # --- inference ------------------------------------------------------------------------------
    def capabilities(self, data=None):
        return Capabilities(sample=True, interpolate=True, truncation=True)

    @torch.no_grad()
    def progress_grid(self, nets, inputs):
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        z = inputs["z"].to(device)
        # The stored noise images: grids of successive steps differ only by what G learnt.
        return gen.synthesis(gen.mapping(z), noise_mode="const").float().clamp(-1, 1), grid_columns(len(z))

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        """``request.num`` images from noise seeded by ``request.seed``, with the truncation trick
        when ``request.truncation`` < 1 (towards the sampling generator's ``w_avg``); noise
        inputs are the stored constant ones, so a seed always gives the same images."""
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        truncation = 1.0 if request.truncation is None else float(request.truncation)
        g = torch.Generator().manual_seed(request.seed)
        z = torch.randn(request.num, int(gen.noise_size), generator=g)
        out = []
        for chunk in z.split(64):
            ws = gen.mapping(chunk.to(device), truncation)
            out.append(gen.synthesis(ws, noise_mode="const").float().clamp(-1, 1).cpu())
        return torch.cat(out), grid_columns(request.num)

    def export_networks(self, nets, capabilities, data=None):
        """``z`` -> images as ``sample`` draws them without truncation: the mapping network, then the
        synthesis network with the stored constant noise images (random noise would make the graph
        differ from PyTorch at every call)."""
        gen = self._sampler(nets)
        notes = {"noise": "the generator's stored constant noise images (noise_mode=const)", "truncation": "none"}
        return [ExportSpec("generator", _MappedSynthesis(gen), (ExportInput("z", (int(gen.noise_size),)),), notes=notes)]

    @torch.no_grad()
    def interpolate(self, nets, seed, class_index=None, num_points=4, frames=16):
        """Frames walking a closed loop through ``num_points`` random latents, linearly in w (the
        space the synthesis network is smooth in), with constant noise."""
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        g = torch.Generator().manual_seed(seed)
        points = gen.mapping(torch.randn(num_points, int(gen.noise_size), generator=g).to(device))[:, 0]
        ts = torch.linspace(0, 1, frames + 1, device=device)[:-1].view(-1, 1)
        w = torch.cat([a.lerp(b, ts) for a, b in zip(points, points.roll(-1, 0))])  # [num_points * frames, w_dim]
        ws = w.unsqueeze(1).repeat(1, gen.num_ws, 1)
        return torch.cat([gen.synthesis(c, noise_mode="const").float().clamp(-1, 1).cpu() for c in ws.split(64)])


class _MappedSynthesis(nn.Module):
    """What `ganforge export` writes of a StyleGAN2 generator: z -> mapping -> synthesis, constant noise."""

    def __init__(self, gen: nn.Module):
        super().__init__()
        self.gen = gen

    def forward(self, z: Tensor) -> Tensor:
        return self.gen.synthesis(self.gen.mapping(z), noise_mode="const")
