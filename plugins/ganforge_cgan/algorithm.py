"""The "cgan" algorithm: class-conditional noise-to-image training.

It is the ``gan`` algorithm (alternating D/G updates, ``d_steps``, optional EMA of G) with labels:
every real batch carries a ``label`` field, the generator is asked for fakes of the same classes,
and the discriminator judges each image together with its class (a projection discriminator).
This is the reference for a *labelled* algorithm: it declares ``fields = {"images": ("label",)}``,
reads the labels with ``batch.field("images", "label")`` and the class names from ``run.data``, and
declares ``Capabilities(classes=True)`` so ``ganforge sample --class NAME`` works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganforge.core.components import Capabilities, SampleRequest
from ganforge.core.errors import RecipeError
from ganforge_dcgan.algorithm import GANAlgorithm, GANConfig, _slerp


@dataclass(frozen=True)
class CGANConfig(GANConfig):
    pass


class CGANAlgorithm(GANAlgorithm):
    fields = {"images": ("label",)}

    def setup(self, run) -> None:
        names = run.data.class_names("images")
        for role in ("generator", "discriminator"):
            net = run.unwrap(role)
            classes = getattr(net, "num_classes", None)
            if classes is None:
                raise RecipeError(
                    f"the 'cgan' algorithm needs a class-conditional {role} (one with `num_classes`); "
                    f"{type(net).__name__} is not",
                    hint=f"choose a conditional {role} in [{role}] (`ganforge plugins` lists them)",
                )
            if classes < len(names):
                raise RecipeError(
                    f"the {role} knows {classes} classes but the data has {len(names)} ({', '.join(names)})",
                    hint=f"set {role}.num_classes = {len(names)}",
                )
        super().setup(run)

    def train_step(self, run, batch):
        G, D = run.nets["generator"], run.nets["discriminator"]
        opt_g, opt_d = run.optimizers["generator"], run.optimizers["discriminator"]
        loss = run.components["loss"]
        real, labels = batch["images"], batch.field("images", "label")
        logs = {}
        for i in range(self.config.d_steps):
            if i > 0:
                nxt = run.next_batch()
                real, labels = nxt["images"], nxt.field("images", "label")
            # Fakes of the same classes as the real batch: G sees the data's class frequencies.
            z = torch.randn(real.size(0), self.noise_size, device=run.device)
            fake = G(z, labels)
            real_in, fake_in = run.augment(real), run.augment(fake.detach())
            d_real, d_fake = D(real_in, labels), D(fake_in, labels)
            run.report_real_scores(d_real)  # adaptive augmentation (ADA) tunes itself from these
            loss_d = loss.d_loss(d_real, d_fake)
            penalty = loss.penalty(lambda x: D(x, labels), real_in, fake_in)
            if penalty is not None:
                loss_d = loss_d + penalty
            opt_d.zero_grad(set_to_none=True)
            run.backward(loss_d)
            opt_d.step()
        if self.config.log_wasserstein:
            logs["wasserstein"] = (d_real.float().mean() - d_fake.float().mean()).item()
        real_out = D(run.augment(real), labels) if loss.uses_real_in_g else None
        loss_g = loss.g_loss(D(run.augment(fake), labels), real_out)
        opt_g.zero_grad(set_to_none=True)
        run.backward(loss_g)
        opt_g.step()
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(), **logs}

    # --- inference ----------------------------------------------------------------------------
    def capabilities(self, data=None):
        return Capabilities(sample=True, classes=True, interpolate=True)

    def progress_inputs(self, run, num):
        """One row per class; column j uses the same noise in every row (so rows differ only by class)."""
        classes = max(1, len(run.data.class_names("images")))
        cols = max(1, math.ceil(num / classes))
        g = torch.Generator().manual_seed(run.seed)
        z = torch.randn(cols, self.noise_size, generator=g)
        return {"z": z.repeat(classes, 1), "labels": torch.arange(classes).repeat_interleave(cols), "cols": torch.tensor(cols)}

    @torch.no_grad()
    def progress_grid(self, nets, inputs):
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        out = gen(inputs["z"].to(device), inputs["labels"].to(device)).float().clamp(-1, 1).cpu()
        return out, int(inputs["cols"])

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        """``class_index`` set: ``num`` images of that class. Unset: one row per class, the same
        noise down each column, ``ceil(num / classes)`` columns."""
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        g = torch.Generator().manual_seed(request.seed)
        if request.class_index is not None:
            self._check_class(gen, request.class_index)
            cols = max(1, int(math.ceil(math.sqrt(request.num))))
            z = torch.randn(request.num, int(gen.noise_size), generator=g)
            labels = torch.full((request.num,), request.class_index, dtype=torch.long)
        else:
            classes = int(gen.num_classes)
            cols = max(1, math.ceil(request.num / classes))
            z = torch.randn(cols, int(gen.noise_size), generator=g).repeat(classes, 1)
            labels = torch.arange(classes).repeat_interleave(cols)
        out = [gen(zc.to(device), lc.to(device)).float().clamp(-1, 1).cpu() for zc, lc in zip(z.split(64), labels.split(64))]
        return torch.cat(out), cols

    @torch.no_grad()
    def interpolate(self, nets, seed, class_index=None, num_points=4, frames=16):
        """A closed loop through ``num_points`` latents within one class (``class_index``); without
        a class, every frame shows all classes side by side on the same latent."""
        gen = self._sampler(nets)
        device = next(gen.parameters()).device
        g = torch.Generator().manual_seed(seed)
        points = torch.randn(num_points, int(gen.noise_size), generator=g)
        zs = torch.stack([_slerp(a, b, float(t)) for a, b in zip(points, points.roll(-1, 0))
                          for t in torch.linspace(0, 1, frames + 1)[:-1]])
        if class_index is not None:
            self._check_class(gen, class_index)
            labels = torch.full((len(zs),), class_index, dtype=torch.long)
            return torch.cat([gen(z.to(device), y.to(device)).float().clamp(-1, 1).cpu()
                              for z, y in zip(zs.split(64), labels.split(64))])
        rows = [gen(zs.to(device), torch.full((len(zs),), c, dtype=torch.long, device=device)).float().clamp(-1, 1).cpu()
                for c in range(int(gen.num_classes))]
        return torch.cat(rows, dim=3)  # frame f: class 0 | class 1 | ... side by side

    @staticmethod
    def _check_class(gen, class_index: int) -> None:
        if not 0 <= class_index < int(gen.num_classes):
            raise ValueError(f"class index {class_index} is outside the generator's {gen.num_classes} classes")
