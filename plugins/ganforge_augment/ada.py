"""Adaptive discriminator augmentation, ADA (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data").

Like DiffAugment it runs inside the training step on every discriminator input, real and fake
alike, and is differentiable w.r.t. the images. Two things differ:

- Every transform is applied to each image independently with probability ``p`` < 1. The paper's
  argument: with p < 1 the augmented distribution still determines the clean one (the
  transforms are "non-leaking"), so G cannot get away with producing, say, rotated images.
- ``p`` is not fixed: it is tuned while training from the overfitting heuristic
  ``r_t = E[sign(D(x_real))]``. A discriminator that is confidently positive on nearly every
  (augmented) real image is overfitting, so ``p`` rises while ``r_t`` is above ``target`` and
  falls while it is below. The trainer feeds D's raw outputs on the reals to :meth:`ADA.observe`
  (algorithms call ``run.report_real_scores``).

The pipeline is the paper's "bgc" set, per image and in this order:

- blit: x-flip, rotation by a multiple of 90 degrees, integer translation (up to 1/8 of the size);
- geom: isotropic scaling (log2-normal, std 0.2), arbitrary rotation, anisotropic scaling
  (log2-normal, std 0.2), a second arbitrary rotation, fractional translation (normal, std 1/8 of
  the size). Each rotation is applied with probability ``1 - sqrt(1 - p)`` so that the chance of
  at least one of the two is ``p``;
- color: brightness (+N(0, 0.2^2)), contrast (x log2-normal, std 0.5), luma flip, hue rotation
  (uniform angle around the luma axis), saturation (x log2-normal, std 1).

All geometric transforms of an image are composed into one affine matrix and applied with a single
bilinear ``grid_sample`` with reflection padding (the paper additionally resamples at 2x with a
wavelet filter to limit aliasing; here one bilinear pass keeps it cheap on a CPU). The colour
transforms are composed into one 4x4 matrix per image acting on RGB (in the [-1, 1] range, as in
the paper). Images that draw no transform are passed through bit for bit, and at ``p = 0`` the
input is returned as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge import Augmentation

GROUPS = ("blit", "geom", "color")


def parse_groups(policy: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in GROUPS]
    if unknown:
        raise ValueError(
            f"policy names unknown transform group(s) {', '.join(map(repr, unknown))} in {policy!r}; "
            f"valid groups: {', '.join(GROUPS)} (comma-separated)"
        )
    if not names:
        raise ValueError(f"policy must name at least one transform group ({', '.join(GROUPS)}), got {policy!r}")
    return names


@dataclass(frozen=True)
class ADAConfig:
    target: float = 0.6  # the r_t = E[sign(D(real))] that p is steered towards (paper: 0.6)
    initial_p: float = 0.0  # the augmentation probability at the start of training
    max_p: float = 1.0  # p is clamped to [0, max_p]
    interval: int = 4  # adjust p once every `interval` discriminator updates
    # Images over which p can move from 0 to 1. The paper uses 500k for long GPU runs; 100k suits the
    # few-thousand-step CPU runs of the cat recipes (6,400 steps x 16 images = 102k images), where p
    # can then actually reach the level the discriminator needs.
    speed_images: int = 100_000
    policy: str = "blit,geom,color"  # transform groups, comma-separated: blit, geom, color
    adjust: bool = True  # false: p stays at initial_p (fixed-probability augmentation)

    def __post_init__(self):
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"target must be in (0, 1), got {self.target}")
        if not 0.0 <= self.max_p <= 1.0:
            raise ValueError(f"max_p must be in [0, 1], got {self.max_p}")
        if not 0.0 <= self.initial_p <= self.max_p:
            raise ValueError(f"initial_p must be in [0, max_p] = [0, {self.max_p}], got {self.initial_p}")
        if self.interval < 1:
            raise ValueError(f"interval must be at least 1, got {self.interval}")
        if self.speed_images < 1:
            raise ValueError(f"speed_images must be at least 1, got {self.speed_images}")
        parse_groups(self.policy)


# --- 3x3 homogeneous 2-D transforms in centred pixel coordinates (x right, y down) -------------------
def _eye(b: int, n: int, device) -> Tensor:
    return torch.eye(n, device=device).expand(b, n, n).clone()


def _translate(tx: Tensor, ty: Tensor) -> Tensor:
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate(cos: Tensor, sin: Tensor) -> Tensor:
    m = _eye(cos.shape[0], 3, cos.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
    return m


class _Chain:
    """Accumulates per-image transforms applied one after the other: the forward matrix
    ``M = T_n ... T_1`` and, alongside, its inverse ``T_1^-1 ... T_n^-1`` built from the exact
    inverse of each step (no matrix inversion: a flip or 90-degree turn stays exact)."""

    def __init__(self, b: int, n: int, device):
        self.forward = _eye(b, n, device)
        self.inverse = _eye(b, n, device)
        self._eye = _eye(b, n, device)

    def then(self, apply: Tensor, mat: Tensor, inv: Tensor | None = None) -> None:
        keep = apply.view(-1, 1, 1)
        mat = torch.where(keep, mat, self._eye)
        self.forward = mat @ self.forward
        if inv is not None:
            self.inverse = self.inverse @ torch.where(keep, inv, self._eye)

    def changed(self) -> Tensor:
        """[B] bool: the images whose composite transform is not exactly the identity."""
        return (self.forward != self._eye).flatten(1).any(1)


def _lognormal2(b: int, std: float, device) -> Tensor:
    """2 ** N(0, std^2): the paper's lnN(0, (std * ln 2)^2)."""
    return torch.exp2(torch.randn(b, device=device) * std)


class ADA(Augmentation):
    """Applies the ADA pipeline with the current probability ``p`` and adapts ``p`` from
    :meth:`observe`. Keeps shape, dtype and device; any batch and image size; colour transforms
    need a channel count that is a multiple of 3 (each RGB triple gets the image's colour matrix,
    so a pix2pix pair concatenated along channels is transformed consistently).

    Every random draw comes from torch's global generator on the input's device (the trainer seeds
    and checkpoints it); the adaptation state is in :meth:`state_dict` so a resumed run continues
    with the same ``p`` bit for bit.
    """

    stage = "step"

    def __init__(self, config: ADAConfig | None = None):
        self.config = c = config or ADAConfig()
        self.groups = parse_groups(c.policy)
        self.p = float(c.initial_p)
        self.rt = 0.0  # the last completed r_t (0 until the first adjustment)
        # Accumulated since the last adjustment (exact integers: resume is bit-exact).
        self.sign_sum = 0  # sum of sign(D(real)) over every score observed
        self.count = 0  # number of scores summed
        self.seen = 0  # real images behind those scores
        self.observations = 0  # observe() calls

    # --- adaptation --------------------------------------------------------------------------
    def observe(self, scores: Tensor) -> None:
        """D's raw outputs on one update's (augmented) real images: ``[B]`` or ``[B, ...]`` (a
        patch discriminator's grid: every element votes, the batch counts as B images). A 1-D
        tensor counts one image per score."""
        scores = scores.detach()
        images = scores.shape[0] if scores.dim() >= 2 else scores.numel()
        positive, negative = torch.stack([(scores > 0).sum(), (scores < 0).sum()]).tolist()  # one sync
        self.sign_sum += positive - negative
        self.count += scores.numel()
        self.seen += images
        self.observations += 1
        if self.observations >= self.config.interval:
            self._adjust()

    def _adjust(self) -> None:
        c = self.config
        if self.count > 0:
            self.rt = self.sign_sum / self.count
            if c.adjust:
                # The paper's update: a fixed step whose size makes p able to go from 0 to 1 in
                # `speed_images` images, in the direction that brings r_t towards the target.
                direction = (self.rt > c.target) - (self.rt < c.target)
                self.p = min(max(self.p + direction * self.seen / c.speed_images, 0.0), c.max_p)
        self.sign_sum = self.count = self.seen = self.observations = 0

    def state_dict(self) -> dict[str, Tensor]:
        return {
            "p": torch.tensor(self.p, dtype=torch.float64),
            "rt": torch.tensor(self.rt, dtype=torch.float64),
            "sign_sum": torch.tensor(self.sign_sum, dtype=torch.int64),
            "count": torch.tensor(self.count, dtype=torch.int64),
            "seen": torch.tensor(self.seen, dtype=torch.int64),
            "observations": torch.tensor(self.observations, dtype=torch.int64),
        }

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = [k for k in ("p", "rt", "sign_sum", "count", "seen", "observations") if k not in state]
        if missing:
            raise KeyError(f"ADA state lacks {', '.join(missing)}")
        self.p = float(state["p"].item())
        self.rt = float(state["rt"].item())
        self.sign_sum = int(state["sign_sum"].item())
        self.count = int(state["count"].item())
        self.seen = int(state["seen"].item())
        self.observations = int(state["observations"].item())

    def log_values(self) -> dict[str, float]:
        return {"ada_p": self.p, "ada_rt": self.rt}

    # --- the augmentation ----------------------------------------------------------------------
    def __call__(self, x: Tensor) -> Tensor:
        p = self.p
        if p <= 0.0 or x.shape[0] == 0:
            return x
        out = x
        # The transform matrices must stay float32 even if called under autocast (a bf16 matrix
        # would shift the sampling grid by a fraction of a pixel).
        with torch.autocast(device_type=x.device.type, enabled=False):
            if "blit" in self.groups or "geom" in self.groups:
                out = self._geometric(out, p)
            if "color" in self.groups:
                out = self._color(out, p)
        return out

    def _geometric(self, x: Tensor, p: float) -> Tensor:
        b, _, h, w = x.shape
        dev = x.device
        chain = _Chain(b, 3, dev)

        def draw(prob: float = p) -> Tensor:
            return torch.rand(b, device=dev) < prob

        one = torch.ones(b, device=dev)
        if "blit" in self.groups:
            # x-flip: i ~ U{0, 1}
            flip = 1.0 - 2.0 * torch.randint(0, 2, (b,), device=dev).float()
            m = _scale(flip, one)
            chain.then(draw(), m, m)
            # rotation by k * 90 degrees, k ~ U{0, 3}: exact cosines and sines
            k = torch.randint(0, 4, (b,), device=dev)
            cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=dev)[k]
            sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=dev)[k]
            chain.then(draw(), _rotate(cos, sin), _rotate(cos, -sin))
            # integer translation: t ~ U(-0.125, 0.125) of the size per axis, rounded to whole pixels
            t = (torch.rand(2, b, device=dev) * 2.0 - 1.0) * 0.125
            tx, ty = torch.round(t[0] * w), torch.round(t[1] * h)
            chain.then(draw(), _translate(tx, ty), _translate(-tx, -ty))
        if "geom" in self.groups:
            p_rot = 1.0 - math.sqrt(1.0 - p)
            s = _lognormal2(b, 0.2, dev)  # isotropic scaling
            chain.then(draw(), _scale(s, s), _scale(1.0 / s, 1.0 / s))
            theta = (torch.rand(b, device=dev) * 2.0 - 1.0) * math.pi  # rotation, before ...
            chain.then(draw(p_rot), _rotate(theta.cos(), theta.sin()), _rotate(theta.cos(), -theta.sin()))
            s = _lognormal2(b, 0.2, dev)  # anisotropic scaling
            chain.then(draw(), _scale(s, 1.0 / s), _scale(1.0 / s, s))
            theta = (torch.rand(b, device=dev) * 2.0 - 1.0) * math.pi  # ... and after it
            chain.then(draw(p_rot), _rotate(theta.cos(), theta.sin()), _rotate(theta.cos(), -theta.sin()))
            t = torch.randn(2, b, device=dev) * 0.125  # fractional translation, in units of the size
            tx, ty = t[0] * w, t[1] * h
            chain.then(draw(), _translate(tx, ty), _translate(-tx, -ty))

        changed = chain.changed()
        # grid_sample maps output to input positions: input = M^-1 (output), both in normalised
        # coordinates ([-1, 1] across the image, pixel edges, align_corners=False). Pixels are
        # normalised by half the size per axis: theta = N^-1 M^-1 N with N = diag(w/2, h/2, 1).
        norm = torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0], device=dev))
        norm_inv = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0], device=dev))
        theta = (norm_inv @ chain.inverse @ norm)[:, :2, :]
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        grid = F.affine_grid(theta.to(work.dtype), list(work.shape), align_corners=False)
        moved = F.grid_sample(work, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        # Untouched images pass through bit for bit (no resampling blur).
        return torch.where(changed.view(-1, 1, 1, 1), moved.to(x.dtype), x)

    def _color(self, x: Tensor, p: float) -> Tensor:
        b, c, h, w = x.shape
        if c % 3:
            raise ValueError(
                f"ADA's colour transforms need RGB images (channels a multiple of 3), got {c} channels; "
                "leave 'color' out of augment.ada.policy"
            )
        dev = x.device
        chain = _Chain(b, 4, dev)

        def draw() -> Tensor:
            return torch.rand(b, device=dev) < p

        def expand(m: Tensor) -> Tensor:  # a 3x3 colour matrix, or [B, 3, 3], as [B, 4, 4]
            out = _eye(b, 4, dev)
            out[:, :3, :3] = m
            return out

        v = torch.full((3,), 1.0 / math.sqrt(3.0), device=dev)  # the luma axis
        vvt = torch.outer(v, v)
        eye3 = torch.eye(3, device=dev)
        # brightness: add b ~ N(0, 0.2^2)
        m = _eye(b, 4, dev)
        m[:, :3, 3] = (torch.randn(b, device=dev) * 0.2).unsqueeze(1)
        chain.then(draw(), m)
        # contrast: multiply by c ~ 2^N(0, 0.5^2)
        chain.then(draw(), expand(_lognormal2(b, 0.5, dev).view(b, 1, 1) * eye3))
        # luma flip: reflect across the plane orthogonal to the luma axis, i ~ U{0, 1}
        i = torch.randint(0, 2, (b,), device=dev).float().view(b, 1, 1)
        chain.then(draw(), expand(eye3 - 2.0 * vvt * i))
        # hue rotation: angle ~ U(-pi, pi) around the luma axis (Rodrigues' formula)
        theta = ((torch.rand(b, device=dev) * 2.0 - 1.0) * math.pi).view(b, 1, 1)
        cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=dev) / math.sqrt(3.0)
        chain.then(draw(), expand(vvt + (eye3 - vvt) * theta.cos() + cross * theta.sin()))
        # saturation: scale the component orthogonal to the luma axis by s ~ 2^N(0, 1)
        s = _lognormal2(b, 1.0, dev).view(b, 1, 1)
        chain.then(draw(), expand(vvt + (eye3 - vvt) * s))

        changed = chain.changed()
        mat = chain.forward
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        rgb = work.reshape(b, c // 3, 3, h * w)
        out = mat[:, None, :3, :3].to(work.dtype) @ rgb + mat[:, None, :3, 3:].to(work.dtype)
        out = out.reshape(b, c, h, w).to(x.dtype)
        return torch.where(changed.view(-1, 1, 1, 1), out, x)

    def __repr__(self) -> str:
        c = self.config
        return f"ADA(policy={','.join(self.groups)!r}, p={self.p:.4f}, target={c.target}, adjust={c.adjust})"


def build_ada(config: ADAConfig | None = None) -> ADA:
    return ADA(config)
