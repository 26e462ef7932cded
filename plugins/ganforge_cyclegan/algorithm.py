"""The "cyclegan" algorithm: unpaired translation with two generators and two discriminators."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge import Algorithm, Capabilities, SampleRequest


@dataclass(frozen=True)
class CycleGANConfig:
    cycle_weight: float = 10.0  # lambda of the L1 cycle-consistency loss, both directions (0: off)
    identity_weight: float = 0.5  # identity loss weight as a fraction of cycle_weight (0: off)
    pool_size: int = 50  # history of generated images the discriminators see (0: only the newest)

    def __post_init__(self):
        if self.cycle_weight < 0 or self.identity_weight < 0:
            raise ValueError("cycle_weight and identity_weight must not be negative")
        if self.pool_size < 0:
            raise ValueError(f"pool_size must not be negative, got {self.pool_size}")


class ImagePool:
    """The last ``size`` generated images (Shrivastava et al.): D is updated on a mix of new and old
    fakes, which damps the oscillation of G and D chasing each other. Randomness from torch's RNG."""

    def __init__(self, size: int):
        self.size = size
        self.images: torch.Tensor | None = None

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        out = []
        for img in fakes.detach():
            img = img.unsqueeze(0)
            if self.images is None or len(self.images) < self.size:
                self.images = img.clone() if self.images is None else torch.cat([self.images, img])
                out.append(img)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i : i + 1].clone())
                self.images[i] = img[0]
            else:
                out.append(img)
        return torch.cat(out)


class CycleGANAlgorithm(Algorithm):
    sections = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}
    roles = {"g_ab": "generator", "g_ba": "generator", "d_a": "discriminator", "d_b": "discriminator"}
    optimizers = {"generator": ("g_ab", "g_ba"), "discriminator": ("d_a", "d_b")}
    domains = ("a", "b")
    directions = ("a2b", "b2a")

    def __init__(self, config: CycleGANConfig):
        self.config = config
        self.pools = {"a": ImagePool(config.pool_size), "b": ImagePool(config.pool_size)}

    def train_step(self, run, batch):
        cfg = self.config
        g_ab, g_ba, d_a, d_b = (run.nets[r] for r in ("g_ab", "g_ba", "d_a", "d_b"))
        opt_g, opt_d = run.optimizers["generator"], run.optimizers["discriminator"]
        loss = run.components["loss"]
        real_a, real_b = batch["a"], batch["b"]

        # Generators: fool both discriminators, and come back to where they started.
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        real_out_b = d_b(run.augment(real_b)) if loss.uses_real_in_g else None
        real_out_a = d_a(run.augment(real_a)) if loss.uses_real_in_g else None
        loss_gan = loss.g_loss(d_b(run.augment(fake_b)), real_out_b) + loss.g_loss(d_a(run.augment(fake_a)), real_out_a)
        logs = {}
        loss_g = loss_gan
        if cfg.cycle_weight > 0:
            # The cycle is compared un-augmented: augmentation only ever feeds the discriminators.
            loss_cycle = F.l1_loss(g_ba(fake_b).float(), real_a) + F.l1_loss(g_ab(fake_a).float(), real_b)
            loss_g = loss_g + cfg.cycle_weight * loss_cycle
            logs["cycle"] = loss_cycle.item()
            if cfg.identity_weight > 0:
                loss_id = F.l1_loss(g_ba(real_a).float(), real_a) + F.l1_loss(g_ab(real_b).float(), real_b)
                loss_g = loss_g + cfg.cycle_weight * cfg.identity_weight * loss_id
                logs["identity"] = loss_id.item()
        opt_g.zero_grad(set_to_none=True)
        run.backward(loss_g)
        opt_g.step()

        # Discriminators: real vs. a mix of new and pooled fakes (detached: no gradient to G).
        pool_a, pool_b = self.pools["a"].query(fake_a), self.pools["b"].query(fake_b)
        loss_d = _d_loss(loss, d_a, run.augment(real_a), run.augment(pool_a)) + _d_loss(
            loss, d_b, run.augment(real_b), run.augment(pool_b)
        )
        opt_d.zero_grad(set_to_none=True)
        run.backward(loss_d)
        opt_d.step()
        return {"d_loss": loss_d.item(), "g_adv": loss_gan.item(), **logs}

    # --- state: the pools must survive a resume for it to be exact ------------------------------
    def state_dict(self):
        state = {}
        for d, pool in self.pools.items():
            if pool.images is not None:
                state[f"pool_{d}"] = pool.images
        return state

    def load_state_dict(self, state):
        for d, pool in self.pools.items():
            images = state.get(f"pool_{d}")
            pool.images = images.clone() if images is not None and len(images) else None

    def setup(self, run):
        for pool in self.pools.values():
            pool.images = None

    def eval_networks(self, run):
        return {"g_ab": run.unwrap("g_ab"), "g_ba": run.unwrap("g_ba")}

    # --- inference ----------------------------------------------------------------------------
    def capabilities(self, data=None):
        return Capabilities(directions=self.directions, sample_inputs=True)

    def progress_inputs(self, run, num):
        rows = max(1, min(8, num // 6 or 1))
        batch = run.fixed_batch(rows)
        return {d: batch[d] for d in ("a", "b")}

    @torch.no_grad()
    def _rows(self, nets, a, b):
        g_ab, g_ba = nets["g_ab"], nets["g_ba"]
        device = next(g_ab.parameters()).device
        a, b = a.to(device), b.to(device)
        ab = g_ab(a).float()
        aba = g_ba(ab).float()
        ba = g_ba(b).float()
        bab = g_ab(ba).float()
        n = min(len(a), len(b))
        # One row per example: source | translation | reconstruction, for A->B then B->A.
        cols = [a[:n], ab[:n], aba[:n], b[:n], ba[:n], bab[:n]]
        return torch.stack(cols, dim=1).flatten(0, 1).clamp(-1, 1).cpu(), 6

    def progress_grid(self, nets, inputs):
        return self._rows(nets, inputs["a"], inputs["b"])

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        images, num = request.inputs, request.num
        if images is None:
            raise ValueError("cyclegan sampling needs source images")
        if "input" in images:  # user images: show both directions applied to each
            x = images["input"][:num]
            return self._rows(nets, x, x)
        return self._rows(nets, images["a"][:num], images["b"][:num])

    def translator(self, nets, direction):
        if direction not in self.directions:
            raise ValueError(f"unknown direction {direction!r}")
        net = nets["g_ab"] if direction == "a2b" else nets["g_ba"]
        device = next(net.parameters()).device
        return lambda x: net(x.to(device)).cpu()


def _d_loss(loss, disc, real, fake):
    d_loss = loss.d_loss(disc(real), disc(fake))
    penalty = loss.penalty(disc, real, fake)
    return d_loss if penalty is None else d_loss + penalty
