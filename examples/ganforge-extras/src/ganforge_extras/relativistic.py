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
outputs on real images, but ganforge's ``AdversarialLoss.g_loss`` receives only the fake outputs.
This loss therefore keeps a *detached* copy of the real outputs from the most recent ``d_loss``
call and uses it in ``g_loss``. That is exact for the generator's gradient except for one thing:
the reference implementation re-evaluates ``C`` on the real batch after the discriminator's
update, while the stored outputs come from just before it (one optimiser step older). The real
terms are constants with respect to the generator either way, so nothing else changes; in
practice the difference is negligible and saves a discriminator forward pass per step.

Consequences for use:

- ``d_loss`` must be called before ``g_loss``, so the loss suits algorithms that update the
  discriminator first, like ``gan``. ``g_loss`` raises ``RuntimeError`` otherwise, so an algorithm
  that updates the generator first, like ``cyclegan``, fails on its first step instead of
  training with the wrong real outputs.
- The stored outputs are not part of ``state_dict()`` (there is nothing to resume: the next step's
  ``d_loss`` refreshes them before ``g_loss`` reads them).
- One loss instance serves one discriminator: an algorithm with several discriminators must
  build one loss per discriminator (or interleave ``d_loss``/``g_loss`` pairwise).

Everything is computed in float32, so bf16/fp16 autocast does not degrade the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from ganforge.components import AdversarialLoss

VARIANTS = ("lsgan", "sgan")


@dataclass(frozen=True)
class RelativisticConfig:
    variant: Literal["lsgan", "sgan"] = "lsgan"  # RaLSGAN (least squares) or RaSGAN (standard/BCE)


class RelativisticAverageLoss(AdversarialLoss):
    """Relativistic average GAN loss (RaLSGAN or RaSGAN); see the module docstring."""

    def __init__(self, config: RelativisticConfig | None = None):
        super().__init__()
        self.config = config or RelativisticConfig()
        if self.config.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.config.variant!r}")
        # Detached float32 copy of the critic's outputs on the last real batch (set by d_loss).
        self.last_real_out: Tensor | None = None

    def _pair(self, positive: Tensor, negative: Tensor) -> Tensor:
        """The loss pushing ``positive`` (relativistic scores) up and ``negative`` down."""
        if self.config.variant == "lsgan":
            return 0.5 * (positive - 1.0).square().mean() + 0.5 * (negative + 1.0).square().mean()
        return 0.5 * F.softplus(-positive).mean() + 0.5 * F.softplus(negative).mean()

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = real_out.float(), fake_out.float()
        self.last_real_out = real.detach()
        return self._pair(real - fake.mean(), fake - real.mean())

    def g_loss(self, fake_out: Tensor) -> Tensor:
        if self.last_real_out is None:
            raise RuntimeError(
                "the relativistic loss needs the discriminator's outputs on real images: call d_loss() "
                "before g_loss() (it reuses the real outputs of the most recent d_loss call), so it only "
                "works with algorithms that update the discriminator first, such as 'gan' (not 'cyclegan')"
            )
        fake = fake_out.float()
        real = self.last_real_out.to(fake.device)
        return self._pair(fake - real.mean(), real - fake.mean())

    def extra_repr(self) -> str:
        return f"variant={self.config.variant!r}"


def build_relativistic(config: RelativisticConfig | None = None) -> RelativisticAverageLoss:
    return RelativisticAverageLoss(config)
