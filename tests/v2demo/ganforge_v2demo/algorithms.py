"""Two algorithms that use only the documented Run interface (ganforge.train.run.Run)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.core.components import Algorithm, Capabilities, SampleRequest


@dataclass(frozen=True)
class CondGANConfig:
    pass


class CondGAN(Algorithm):
    sections = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}
    roles = {"generator": "generator", "discriminator": "discriminator"}
    optimizers = {"generator": ("generator",), "discriminator": ("discriminator",)}
    domains = ("images",)
    fields = {"images": ("label",)}

    def __init__(self, config: CondGANConfig):
        self.config = config

    def setup(self, run):
        self.noise_size = run.unwrap("generator").noise_size
        self.classes = len(run.data.class_names("images"))

    def train_step(self, run, batch):
        G, D = run.nets["generator"], run.nets["discriminator"]
        loss = run.components["loss"]
        real, labels = batch["images"], batch.field("images", "label")
        z = torch.randn(real.size(0), self.noise_size, device=run.device)
        fake = G(z, labels)
        d_real, d_fake = D(run.augment(real), labels), D(run.augment(fake.detach()), labels)
        loss_d = loss.d_loss(d_real, d_fake)
        run.optimizers["discriminator"].zero_grad(set_to_none=True)
        run.backward(loss_d)
        run.optimizers["discriminator"].step()
        real_out = D(run.augment(real), labels) if loss.uses_real_in_g else None
        loss_g = loss.g_loss(D(run.augment(fake), labels), real_out)
        run.optimizers["generator"].zero_grad(set_to_none=True)
        run.backward(loss_g)
        run.optimizers["generator"].step()
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item()}

    def capabilities(self, data=None):
        return Capabilities(sample=True, classes=True, interpolate=True)

    def progress_inputs(self, run, num):
        g = torch.Generator().manual_seed(run.seed)
        return {"z": torch.randn(num, self.noise_size, generator=g), "labels": torch.arange(num) % self.classes}

    @torch.no_grad()
    def progress_grid(self, nets, inputs):
        gen = nets["generator"]
        device = next(gen.parameters()).device
        images = gen(inputs["z"].to(device), inputs["labels"].to(device)).clamp(-1, 1)
        return images.cpu(), int(math.ceil(math.sqrt(len(inputs["z"]))))

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        gen = nets["generator"]
        g = torch.Generator().manual_seed(request.seed)
        if request.class_index is not None:  # every image of the one class
            labels = torch.full((request.num,), request.class_index, dtype=torch.long)
            cols = int(math.ceil(math.sqrt(request.num)))
        else:  # one row per class
            cols = max(1, request.num // gen.num_classes)
            labels = torch.arange(gen.num_classes).repeat_interleave(cols)
        z = torch.randn(len(labels), gen.noise_size, generator=g)
        return gen(z, labels).clamp(-1, 1), cols

    @torch.no_grad()
    def interpolate(self, nets, seed, class_index=None):
        gen = nets["generator"]
        g = torch.Generator().manual_seed(seed)
        a, b = torch.randn(2, gen.noise_size, generator=g)
        t = torch.linspace(0, 1, 8).unsqueeze(1)
        labels = torch.full((8,), class_index or 0, dtype=torch.long)
        return gen((1 - t) * a + t * b, labels).clamp(-1, 1)


@dataclass(frozen=True)
class PairedConfig:
    l1_weight: float = 100.0


class PairedL1GAN(Algorithm):
    sections = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}
    roles = {"generator": "generator", "discriminator": "discriminator"}
    optimizers = {"generator": ("generator",), "discriminator": ("discriminator",)}
    domains = ("pairs",)
    fields = {"pairs": ("target",)}

    def __init__(self, config: PairedConfig):
        self.config = config

    def train_step(self, run, batch):
        G, D = run.nets["generator"], run.nets["discriminator"]
        loss = run.components["loss"]
        source, target = batch["pairs"], batch.field("pairs", "target")
        fake = G(source)
        d_real, d_fake = D(torch.cat([source, target], 1)), D(torch.cat([source, fake.detach()], 1))
        loss_d = loss.d_loss(d_real, d_fake)
        run.optimizers["discriminator"].zero_grad(set_to_none=True)
        run.backward(loss_d)
        run.optimizers["discriminator"].step()
        real_out = D(torch.cat([source, target], 1)) if loss.uses_real_in_g else None
        adv = loss.g_loss(D(torch.cat([source, fake], 1)), real_out)
        l1 = F.l1_loss(fake.float(), target)
        loss_g = adv + self.config.l1_weight * l1
        run.optimizers["generator"].zero_grad(set_to_none=True)
        run.backward(loss_g)
        run.optimizers["generator"].step()
        return {"d_loss": loss_d.item(), "g_adv": adv.item(), "l1": l1.item()}

    def capabilities(self, data=None):
        return Capabilities(directions=("sketch2photo",), sample_inputs=True)

    def progress_inputs(self, run, num):
        batch = run.fixed_batch(min(num, 8))
        return {"source": batch["pairs"], "target": batch.field("pairs", "target")}

    @torch.no_grad()
    def progress_grid(self, nets, inputs):
        gen = nets["generator"]
        out = gen(inputs["source"].to(next(gen.parameters()).device)).clamp(-1, 1).cpu()
        return torch.stack([inputs["source"], out, inputs["target"]], 1).flatten(0, 1), 3

    @torch.no_grad()
    def sample(self, nets, request: SampleRequest):
        source = next(iter(request.inputs.values()))[: request.num]
        out = nets["generator"](source).clamp(-1, 1)
        return torch.stack([source, out], 1).flatten(0, 1), 2

    def translator(self, nets, direction):
        return lambda x: nets["generator"](x)
