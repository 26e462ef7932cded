"""The "pix2pix" algorithm: paired image-to-image translation (Isola et al. 2017).

The generator maps an input to an output; the conditional discriminator sees (input, output)
pairs, real (the dataset's target) or fake, concatenated along the channels; the generator's loss
adds ``l1_weight`` times the L1 distance to the target (100 in the paper), which gets the
low frequencies right while the adversarial term makes them sharp.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge import Algorithm, Capabilities, RecipeError, SampleRequest


@dataclass(frozen=True)
class Pix2PixConfig:
    l1_weight: float = 100.0
    direction: str = "a2b"
    """The name of the translation (``ganforge translate --direction NAME``), e.g. "edges2cats"."""

    def __post_init__(self):
        if self.l1_weight < 0:
            raise ValueError(f"l1_weight must not be negative, got {self.l1_weight}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.direction):
            raise ValueError(f"direction must be a short name (letters, digits, - _ .), got {self.direction!r}")


class Pix2PixAlgorithm(Algorithm):
    sections = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}
    roles = {"generator": "generator", "discriminator": "discriminator"}
    optimizers = {"generator": ("generator",), "discriminator": ("discriminator",)}
    domains = ("pairs",)
    fields = {"pairs": ("target",)}

    def __init__(self, config: Pix2PixConfig):
        self.config = config

    def setup(self, run) -> None:
        gen, disc = run.unwrap("generator"), run.unwrap("discriminator")
        if hasattr(gen, "noise_size"):
            raise RecipeError(
                f"the 'pix2pix' algorithm needs an image-to-image generator; {type(gen).__name__} maps noise to images",
                hint="choose e.g. generator 'unet' in [generator]",
            )
        channels = getattr(disc, "in_channels", 3)
        if channels != 6:
            raise RecipeError(
                f"the 'pix2pix' discriminator must see input and output together (in_channels = 6); "
                f"{type(disc).__name__} takes {channels}",
                hint="choose discriminator 'patchgan-pair' in [discriminator]",
            )

    def train_step(self, run, batch):
        G, D = run.nets["generator"], run.nets["discriminator"]
        opt_g, opt_d = run.optimizers["generator"], run.optimizers["discriminator"]
        loss = run.components["loss"]
        source, target = batch["pairs"], batch.field("pairs", "target")
        fake = G(source)

        real_pair = run.augment(torch.cat([source, target], 1))
        fake_pair = run.augment(torch.cat([source, fake.detach()], 1))  # detach: D's update must not reach G
        loss_d = loss.d_loss(D(real_pair), D(fake_pair))
        penalty = loss.penalty(D, real_pair, fake_pair)
        if penalty is not None:
            loss_d = loss_d + penalty
        opt_d.zero_grad(set_to_none=True)
        run.backward(loss_d)
        opt_d.step()

        real_out = D(run.augment(torch.cat([source, target], 1))) if loss.uses_real_in_g else None
        adv = loss.g_loss(D(run.augment(torch.cat([source, fake], 1))), real_out)
        l1 = F.l1_loss(fake.float(), target.float())
        loss_g = adv + self.config.l1_weight * l1
        opt_g.zero_grad(set_to_none=True)
        run.backward(loss_g)
        opt_g.step()
        return {"d_loss": loss_d.item(), "g_adv": adv.item(), "l1": l1.item()}

    def eval_networks(self, run):
        return {"generator": run.unwrap("generator")}

    # --- inference ----------------------------------------------------------------------------
    def capabilities(self, data=None):
        return Capabilities(directions=(self.config.direction,), sample_inputs=True)

    def progress_inputs(self, run, num):
        batch = run.fixed_batch(max(1, min(8, num // 3 or 1)))
        return {"source": batch["pairs"], "target": batch.field("pairs", "target")}

    @torch.no_grad()
    def progress_grid(self, nets, inputs):
        """One row per example: input | translation | target."""
        out = self._run(nets, inputs["source"])
        return torch.stack([inputs["source"], out, inputs["target"]], 1).flatten(0, 1).clamp(-1, 1), 3

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        """One row per source image: input | translation."""
        if not request.inputs:
            raise ValueError("pix2pix sampling needs source images")
        source = next(iter(request.inputs.values()))[: request.num]
        out = self._run(nets, source)
        return torch.stack([source, out], 1).flatten(0, 1).clamp(-1, 1), 2

    def translation_fields(self, direction):
        """Evaluation translates the pairs' inputs and compares with the pairs' real targets."""
        if direction != self.config.direction:
            raise ValueError(f"unknown direction {direction!r} (this model translates {self.config.direction})")
        return (self.domains[0], "image"), (self.domains[0], "target")

    def translator(self, nets, direction):
        if direction != self.config.direction:
            raise ValueError(f"unknown direction {direction!r} (this model translates {self.config.direction})")
        return lambda x: self._run(nets, x)

    def export_networks(self, nets, capabilities, data=None):
        """The generator itself: the translator feeds it chunks of 32 images, which a graph with a
        dynamic batch size cannot hold."""
        return [dataclasses.replace(spec, module=nets["generator"])
                for spec in super().export_networks(nets, capabilities, data)]

    @staticmethod
    @torch.no_grad()
    def _run(nets, x):
        gen = nets["generator"]
        device = next(gen.parameters()).device
        return torch.cat([gen(c.to(device)).float().cpu() for c in x.split(32)])
