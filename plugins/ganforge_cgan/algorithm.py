"""The "cgan" algorithm: class-conditional noise-to-image training.

It is the ``gan`` algorithm (alternating D/G updates, ``d_steps``, optional EMA of G) with labels,
through its three hooks: every real batch carries a ``label`` field (``condition``), the generator
is asked for fakes of the same classes (``generate``), and the discriminator judges each image
together with its class (``discriminate``, a projection discriminator).
This is the reference for a *labelled* algorithm: it declares ``fields = {"images": ("label",)}``,
reads the labels with ``batch.field("images", "label")`` and the class names from ``run.data``, and
declares ``Capabilities(classes=True)`` so ``ganforge sample --class NAME`` works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganforge import Capabilities, RecipeError, SampleRequest
from ganforge.nn import latent_loop
from ganforge_gan import GANAlgorithm, GANConfig


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

    # --- the gan algorithm's step, with labels -----------------------------------------------------
    def condition(self, batch):
        return batch.field("images", "label")

    def generate(self, G, z, labels):
        return G(z, labels)

    def discriminate(self, D, images, labels):
        return D(images, labels)

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
        zs = latent_loop(torch.randn(num_points, int(gen.noise_size), generator=g), frames)
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
