"""Adversarial losses over raw discriminator outputs of any shape ``[B, ...]``.

Every loss reduces by the mean over all elements and computes in float32 (inputs are cast with
``.float()``), so running the networks under bf16/fp16 autocast does not degrade the loss.

Every built-in loss also takes the LeCam regulariser (Tseng et al. 2021, "Regularizing Generative
Adversarial Networks under Limited Data") through two options, ``lecam`` (its weight; 0 = off) and
``lecam_decay`` (the decay of its moving averages): see :class:`LeCamRegularizer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge import AdversarialLoss

# --------------------------------------------------------------------------- LeCam


def check_lecam(config) -> None:
    """Validate a config's ``lecam`` / ``lecam_decay`` options (called from its ``__post_init__``)."""
    if not config.lecam >= 0.0:
        raise ValueError(f"lecam must be >= 0, got {config.lecam}")
    if not 0.0 <= config.lecam_decay < 1.0:
        raise ValueError(f"lecam_decay must be in [0, 1), got {config.lecam_decay}")


class LeCamRegularizer:
    """Mixin for :class:`AdversarialLoss` subclasses: the LeCam regulariser on the discriminator.

    With ``lecam = w > 0``, ``d_loss`` gets ``w * R`` added, where

        R = mean(relu(D(x) - ema_fake)^2) + mean(relu(ema_real - D(G(z)))^2)

    and ``ema_real`` / ``ema_fake`` are exponential moving averages (decay ``lecam_decay``) of the
    batch means of D's outputs on reals and fakes. It pulls real scores towards the recent fake
    average and fake scores towards the recent real average, but only from the side where they
    have crossed it, which bounds how far D can separate the two (the paper relates it to the
    LeCam divergence) and keeps D from overfitting a small training set.

    Each call to ``d_loss`` in training mode first updates the averages from the detached batch
    means (the very first update copies them, rather than decaying from 0) and then computes R with
    them. The averages are buffers, so they move with the loss to the device and are stored in
    every training checkpoint through the loss's ``state_dict()``; ``loss.eval()`` freezes them.
    With ``lecam = 0`` the loss has no buffers and ``d_loss`` is exactly the plain one.
    """

    def _init_lecam(self, config) -> None:
        self.lecam_weight = float(config.lecam)
        self.lecam_decay = float(config.lecam_decay)
        if self.lecam_weight > 0:
            self.register_buffer("lecam_ema_real", torch.zeros(()))
            self.register_buffer("lecam_ema_fake", torch.zeros(()))
            self.register_buffer("lecam_initialized", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _update_lecam(self, real_out: Tensor, fake_out: Tensor) -> None:
        real_mean = real_out.detach().float().mean().to(self.lecam_ema_real.device)
        fake_mean = fake_out.detach().float().mean().to(self.lecam_ema_fake.device)
        # decay 0 on the first update: the averages start at the first batch means.
        decay = torch.where(self.lecam_initialized, self.lecam_decay, 0.0)
        self.lecam_ema_real.copy_(decay * self.lecam_ema_real + (1.0 - decay) * real_mean)
        self.lecam_ema_fake.copy_(decay * self.lecam_ema_fake + (1.0 - decay) * fake_mean)
        self.lecam_initialized.fill_(True)

    def lecam_penalty(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """R for these outputs, against the current averages (unweighted; does not update them)."""
        real_out, fake_out = real_out.float(), fake_out.float()
        ema_real = self.lecam_ema_real.to(real_out.device)
        ema_fake = self.lecam_ema_fake.to(real_out.device)
        return F.relu(real_out - ema_fake).square().mean() + F.relu(ema_real - fake_out).square().mean()

    def with_lecam(self, loss: Tensor, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """``loss`` (the plain discriminator loss) plus the weighted LeCam term, when enabled."""
        if self.lecam_weight <= 0:
            return loss
        if self.training:
            self._update_lecam(real_out, fake_out)
        return loss + self.lecam_weight * self.lecam_penalty(real_out, fake_out)

    def log_values(self) -> dict[str, float]:
        """The averages, logged as ``lecam_real`` and ``lecam_fake`` (nothing when LeCam is off)."""
        if self.lecam_weight <= 0:
            return {}
        return {"lecam_real": float(self.lecam_ema_real), "lecam_fake": float(self.lecam_ema_fake)}

    def extra_repr(self) -> str:
        return f"lecam={self.lecam_weight}, lecam_decay={self.lecam_decay}" if self.lecam_weight > 0 else ""

# --------------------------------------------------------------------------- LSGAN


@dataclass(frozen=True)
class LSGANConfig:
    real_label: float = 1.0  # b (D's target for reals) and c (G's target for fakes)
    fake_label: float = 0.0  # a (D's target for fakes)
    lecam: float = 0.0  # weight of the LeCam regulariser on D (0: off)
    lecam_decay: float = 0.99  # decay of LeCam's moving averages of D's outputs

    def __post_init__(self):
        check_lecam(self)


class LSGANLoss(LeCamRegularizer, AdversarialLoss):
    """Least-squares GAN (Mao et al. 2017), the a=0, b=1, c=1 form:

    - D: 0.5 * mean((D(x) - b)^2) + 0.5 * mean((D(G(z)) - a)^2) [+ lecam * R]
    - G: 0.5 * mean((D(G(z)) - c)^2)

    with ``b = c = real_label`` and ``a = fake_label``; R is the LeCam regulariser
    (:class:`LeCamRegularizer`), off by default.
    """

    def __init__(self, config: LSGANConfig | None = None):
        super().__init__()
        self.config = config or LSGANConfig()
        self._init_lecam(self.config)

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = self.config.real_label, self.config.fake_label
        loss = 0.5 * (real_out.float() - real).square().mean() + 0.5 * (fake_out.float() - fake).square().mean()
        return self.with_lecam(loss, real_out, fake_out)

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return 0.5 * (fake_out.float() - self.config.real_label).square().mean()


def build_lsgan(config: LSGANConfig | None = None) -> LSGANLoss:
    return LSGANLoss(config)


# --------------------------------------------------------------------------- vanilla (BCE)


@dataclass(frozen=True)
class VanillaConfig:
    label_smoothing: float = 0.0  # one-sided: D's target for reals is 1 - label_smoothing
    lecam: float = 0.0  # weight of the LeCam regulariser on D (0: off)
    lecam_decay: float = 0.99  # decay of LeCam's moving averages of D's outputs

    def __post_init__(self):
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        check_lecam(self)


class VanillaGANLoss(LeCamRegularizer, AdversarialLoss):
    """The original GAN objective on logits, with the non-saturating generator loss:

    - D: BCE(D(x), 1 - smoothing) + BCE(D(G(z)), 0)   (sum of the two means) [+ lecam * R]
    - G: BCE(D(G(z)), 1) = mean(softplus(-D(G(z))))    (maximise log D(G(z)))

    R is the LeCam regulariser on the logits (:class:`LeCamRegularizer`), off by default.
    """

    def __init__(self, config: VanillaConfig | None = None):
        super().__init__()
        self.config = config or VanillaConfig()
        self._init_lecam(self.config)

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = real_out.float(), fake_out.float()
        real_target = torch.full_like(real, 1.0 - self.config.label_smoothing)
        loss = F.binary_cross_entropy_with_logits(real, real_target) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
        return self.with_lecam(loss, real_out, fake_out)

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        fake_out = fake_out.float()
        return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))


def build_vanilla(config: VanillaConfig | None = None) -> VanillaGANLoss:
    return VanillaGANLoss(config)


# --------------------------------------------------------------------------- hinge


@dataclass(frozen=True)
class HingeConfig:
    lecam: float = 0.0  # weight of the LeCam regulariser on D (0: off)
    lecam_decay: float = 0.99  # decay of LeCam's moving averages of D's outputs

    def __post_init__(self):
        check_lecam(self)


class HingeLoss(LeCamRegularizer, AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN):

    - D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))) [+ lecam * R]
    - G: -mean(D(G(z)))

    R is the LeCam regulariser (:class:`LeCamRegularizer`), off by default; the LeCam paper's
    BigGAN experiments use it with this loss.
    """

    def __init__(self, config: HingeConfig | None = None):
        super().__init__()
        self.config = config or HingeConfig()
        self._init_lecam(self.config)

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        loss = F.relu(1.0 - real_out.float()).mean() + F.relu(1.0 + fake_out.float()).mean()
        return self.with_lecam(loss, real_out, fake_out)

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.float().mean()


def build_hinge(config: HingeConfig | None = None) -> HingeLoss:
    return HingeLoss(config)


# --------------------------------------------------------------------------- WGAN-GP


@dataclass(frozen=True)
class WGANGPConfig:
    gp_weight: float = 10.0
    drift: float = 0.0  # epsilon-drift (Karras et al. 2018): keeps the critic's outputs near 0
    lecam: float = 0.0  # weight of the LeCam regulariser on D (0: off)
    lecam_decay: float = 0.99  # decay of LeCam's moving averages of D's outputs

    def __post_init__(self):
        if self.gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {self.gp_weight}")
        if self.drift < 0:
            raise ValueError(f"drift must be >= 0, got {self.drift}")
        check_lecam(self)


class WGANGPLoss(LeCamRegularizer, AdversarialLoss):
    """Wasserstein loss with gradient penalty (Gulrajani et al. 2017):

    - D: mean(D(G(z))) - mean(D(x)) [+ drift * mean(D(x)^2)] [+ lecam * R]
    - G: -mean(D(G(z)))
    - penalty: gp_weight * mean((||grad D(x_hat)||_2 - 1)^2), x_hat = eps*x + (1-eps)*G(z),
      eps ~ U[0, 1] per sample. This pushes the critic towards being 1-Lipschitz along lines
      between real and fake samples. Critics should not use batch norm with this loss (the
      per-sample gradient is then ill-defined); use "instance" or "none".
    - R: the LeCam regulariser (:class:`LeCamRegularizer`), off by default.
    """

    def __init__(self, config: WGANGPConfig | None = None):
        super().__init__()
        self.config = config or WGANGPConfig()
        self._init_lecam(self.config)

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = real_out.float(), fake_out.float()
        loss = fake.mean() - real.mean()
        if self.config.drift:
            loss = loss + self.config.drift * real.square().mean()
        return self.with_lecam(loss, real_out, fake_out)

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
    "HingeConfig",
    "HingeLoss",
    "LeCamRegularizer",
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
    "check_lecam",
]
