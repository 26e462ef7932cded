"""Relativistic average GAN losses (Jolicoeur-Martineau 2019, "The relativistic discriminator: a key
element missing from standard GAN"), in the least-squares (RaLSGAN) and standard (RaSGAN) forms.

A relativistic discriminator judges how much more realistic a real image is than the *average*
fake (and a fake than the average real). With ``C`` the raw critic output, ``r = C(x_real)``,
``f = C(G(z))`` and ``mean`` taken over all elements of a batch (patch scores included):

RaLSGAN (``variant = "lsgan"``, the default)::

    D: 0.5 * mean((r - mean(f) - 1)^2) + 0.5 * mean((f - mean(r) + 1)^2)
    G: 0.5 * mean((f - mean(r) - 1)^2) + 0.5 * mean((r - mean(f) + 1)^2)

RaSGAN (``variant = "sgan"``, BCE on logits, ``BCE(x, 1) = softplus(-x)``)::

    D: 0.5 * BCE(r - mean(f), 1) + 0.5 * BCE(f - mean(r), 0)
    G: 0.5 * BCE(f - mean(r), 1) + 0.5 * BCE(r - mean(f), 0)

(the factor 0.5 follows the reference implementation).

**The generator loss and the real outputs.** The relativistic generator loss needs the critic's
outputs on real images. The loss sets ``uses_real_in_g = True``, so ganforge algorithms run the
current critic on the step's real batch for the generator's update and pass it as
``g_loss(fake_out, real_out)``: exact, stateless, and independent of whether an algorithm updates
the discriminator or the generator first (``gan`` and ``cyclegan`` both work). The real terms are
constants with respect to the generator; they are detached.

Everything is computed in float32, so bf16/fp16 autocast does not degrade the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from ganforge import AdversarialLoss

VARIANTS = ("lsgan", "sgan")


@dataclass(frozen=True)
class RelativisticConfig:
    variant: Literal["lsgan", "sgan"] = "lsgan"  # RaLSGAN (least squares) or RaSGAN (standard/BCE)


class RelativisticAverageLoss(AdversarialLoss):
    """Relativistic average GAN loss (RaLSGAN or RaSGAN); see the module docstring."""

    uses_real_in_g = True

    def __init__(self, config: RelativisticConfig | None = None):
        super().__init__()
        self.config = config or RelativisticConfig()
        if self.config.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.config.variant!r}")

    def _pair(self, positive: Tensor, negative: Tensor) -> Tensor:
        """The loss pushing ``positive`` (relativistic scores) up and ``negative`` down."""
        if self.config.variant == "lsgan":
            return 0.5 * (positive - 1.0).square().mean() + 0.5 * (negative + 1.0).square().mean()
        return 0.5 * F.softplus(-positive).mean() + 0.5 * F.softplus(negative).mean()

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = real_out.float(), fake_out.float()
        return self._pair(real - fake.mean(), fake - real.mean())

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        if real_out is None:
            raise ValueError(
                "the relativistic loss needs the discriminator's outputs on real images: pass "
                "g_loss(fake_out, real_out) (ganforge algorithms do, because uses_real_in_g is set)"
            )
        fake, real = fake_out.float(), real_out.detach().float()
        return self._pair(fake - real.mean(), real - fake.mean())

    def extra_repr(self) -> str:
        return f"variant={self.config.variant!r}"


def build_relativistic(config: RelativisticConfig | None = None) -> RelativisticAverageLoss:
    return RelativisticAverageLoss(config)
