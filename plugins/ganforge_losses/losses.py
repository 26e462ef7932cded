"""Adversarial losses over raw discriminator outputs of any shape ``[B, ...]``.

Every loss reduces by the mean over all elements and computes in float32 (inputs are cast with
``.float()``), so running the networks under bf16/fp16 autocast does not degrade the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.components import AdversarialLoss

# --------------------------------------------------------------------------- LSGAN


@dataclass(frozen=True)
class LSGANConfig:
    real_label: float = 1.0  # b (D's target for reals) and c (G's target for fakes)
    fake_label: float = 0.0  # a (D's target for fakes)


class LSGANLoss(AdversarialLoss):
    """Least-squares GAN (Mao et al. 2017), the a=0, b=1, c=1 form:

    - D: 0.5 * mean((D(x) - b)^2) + 0.5 * mean((D(G(z)) - a)^2)
    - G: 0.5 * mean((D(G(z)) - c)^2)

    with ``b = c = real_label`` and ``a = fake_label``.
    """

    def __init__(self, config: LSGANConfig | None = None):
        super().__init__()
        self.config = config or LSGANConfig()

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = self.config.real_label, self.config.fake_label
        return 0.5 * (real_out.float() - real).square().mean() + 0.5 * (fake_out.float() - fake).square().mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return 0.5 * (fake_out.float() - self.config.real_label).square().mean()


def build_lsgan(config: LSGANConfig | None = None) -> LSGANLoss:
    return LSGANLoss(config)


# --------------------------------------------------------------------------- vanilla (BCE)


@dataclass(frozen=True)
class VanillaConfig:
    label_smoothing: float = 0.0  # one-sided: D's target for reals is 1 - label_smoothing


class VanillaGANLoss(AdversarialLoss):
    """The original GAN objective on logits, with the non-saturating generator loss:

    - D: BCE(D(x), 1 - smoothing) + BCE(D(G(z)), 0)   (sum of the two means)
    - G: BCE(D(G(z)), 1) = mean(softplus(-D(G(z))))    (maximise log D(G(z)))
    """

    def __init__(self, config: VanillaConfig | None = None):
        super().__init__()
        self.config = config or VanillaConfig()
        if not 0.0 <= self.config.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.config.label_smoothing}")

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real_out, fake_out = real_out.float(), fake_out.float()
        real_target = torch.full_like(real_out, 1.0 - self.config.label_smoothing)
        return F.binary_cross_entropy_with_logits(real_out, real_target) + F.binary_cross_entropy_with_logits(
            fake_out, torch.zeros_like(fake_out)
        )

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        fake_out = fake_out.float()
        return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))


def build_vanilla(config: VanillaConfig | None = None) -> VanillaGANLoss:
    return VanillaGANLoss(config)


# --------------------------------------------------------------------------- hinge


class HingeLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN):

    - D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))
    - G: -mean(D(G(z)))
    """

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.relu(1.0 - real_out.float()).mean() + F.relu(1.0 + fake_out.float()).mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.float().mean()


def build_hinge(config: None = None) -> HingeLoss:
    return HingeLoss()


# --------------------------------------------------------------------------- WGAN-GP


@dataclass(frozen=True)
class WGANGPConfig:
    gp_weight: float = 10.0
    drift: float = 0.0  # epsilon-drift (Karras et al. 2018): keeps the critic's outputs near 0


class WGANGPLoss(AdversarialLoss):
    """Wasserstein loss with gradient penalty (Gulrajani et al. 2017):

    - D: mean(D(G(z))) - mean(D(x)) [+ drift * mean(D(x)^2)]
    - G: -mean(D(G(z)))
    - penalty: gp_weight * mean((||grad D(x_hat)||_2 - 1)^2), x_hat = eps*x + (1-eps)*G(z),
      eps ~ U[0, 1] per sample. This pushes the critic towards being 1-Lipschitz along lines
      between real and fake samples. Critics should not use batch norm with this loss (the
      per-sample gradient is then ill-defined); use "instance" or "none".
    """

    def __init__(self, config: WGANGPConfig | None = None):
        super().__init__()
        self.config = config or WGANGPConfig()
        if self.config.gp_weight < 0 or self.config.drift < 0:
            raise ValueError("gp_weight and drift must be >= 0")

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real_out, fake_out = real_out.float(), fake_out.float()
        loss = fake_out.mean() - real_out.mean()
        if self.config.drift:
            loss = loss + self.config.drift * real_out.square().mean()
        return loss

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.float().mean()

    def penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | None:
        if self.config.gp_weight == 0:
            return None
        real, fake = real.detach(), fake.detach()
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        eps = torch.rand(shape, device=real.device).to(real.dtype)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        with torch.enable_grad():
            out = critic(x_hat)
            # create_graph=True: the penalty must itself be differentiable w.r.t. the critic.
            (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
        # The small epsilon keeps the sqrt differentiable when a gradient is exactly zero.
        norm = (grad.float().flatten(1).square().sum(1) + 1e-12).sqrt()
        return self.config.gp_weight * (norm - 1.0).square().mean()


def build_wgan_gp(config: WGANGPConfig | None = None) -> WGANGPLoss:
    return WGANGPLoss(config)


__all__ = [
    "HingeLoss",
    "LSGANConfig",
    "LSGANLoss",
    "VanillaConfig",
    "VanillaGANLoss",
    "WGANGPConfig",
    "WGANGPLoss",
    "build_hinge",
    "build_lsgan",
    "build_vanilla",
    "build_wgan_gp",
]
