"""The mathematics of the built-in metrics, on feature matrices ``[N, D]`` (float64 inside).

- FID (Heusel et al. 2017): ``|mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2))`` with
  unbiased covariances. The trace of the matrix square root is computed exactly without a D x D
  square root: the non-zero eigenvalues of ``S_r S_f`` are the squared singular values of
  ``X_r X_f^T / sqrt((n_r - 1)(n_f - 1))`` (centred features), so the trace is that matrix's nuclear
  norm. It is an ``n_r x n_f`` matrix, small for small sets, and the result is real by construction.
- KID (Binkowski et al. 2018): the unbiased estimate of MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / D + 1)^3``, averaged over random subsets (mean and standard deviation).
- Precision / recall (Kynkaanniemi et al. 2019): each set's manifold is the union of balls around
  its points reaching their k-th nearest neighbour; precision is the share of generated points inside
  the real manifold, recall the share of real points inside the generated one.
- SSIM (Wang et al. 2004) on grayscale, Gaussian window 11 / sigma 1.5, for source vs translation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _f64(x: Tensor) -> Tensor:
    return x.detach().to("cpu", torch.float64)


def fid(real: Tensor, fake: Tensor) -> float:
    r, f = _f64(real), _f64(fake)
    mu_r, mu_f = r.mean(0), f.mean(0)
    rc, fc = r - mu_r, f - mu_f
    nr, nf = len(r) - 1, len(f) - 1
    tr_r = (rc * rc).sum() / nr
    tr_f = (fc * fc).sum() / nf
    cross = torch.linalg.svdvals(rc @ fc.T).sum() / math.sqrt(nr * nf)
    return float((mu_r - mu_f).square().sum() + tr_r + tr_f - 2 * cross)


def kid_subset_size(n_real: int, n_fake: int, wanted: int = 1000) -> int:
    """The subset size KID uses: the usual 1000, or the smaller set's size when a set is smaller."""
    return max(2, min(wanted, n_real, n_fake))


def _poly(x: Tensor, y: Tensor) -> Tensor:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly(x, x), _poly(y, y), _poly(x, y)
    a = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    b = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(a + b - 2 * kxy.mean())


def kid(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    r, f = _f64(real), _f64(fake)
    size = kid_subset_size(len(r), len(f), subset_size)
    if size == len(r) == len(f):
        subsets = 1  # every "subset" would be both whole sets: one value, no spread to report
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        ri = torch.randperm(len(r), generator=g)[:size]
        fi = torch.randperm(len(f), generator=g)[:size]
        values.append(mmd2_unbiased(r[ri], f[fi]))
    t = torch.tensor(values, dtype=torch.float64)
    std = float(t.std(unbiased=True)) if len(values) > 1 else 0.0
    return {"kid": float(t.mean()), "kid_std": std, "kid_subset_size": float(size), "kid_subsets": float(subsets)}


def _kth_radii(x: Tensor, k: int) -> Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the 1st smallest is the point itself (distance 0)


def _coverage(points: Tensor, centres: Tensor, radii: Tensor, chunk: int = 1024) -> float:
    inside = []
    for part in points.split(chunk):
        inside.append((torch.cdist(part, centres) <= radii.unsqueeze(0)).any(dim=1))
    return float(torch.cat(inside).double().mean())


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> dict[str, float]:
    r, f = _f64(real), _f64(fake)
    if k >= min(len(r), len(f)):
        raise ValueError(f"k={k} needs more than {k} images in each set (got {len(r)} real, {len(f)} generated)")
    precision = _coverage(f, r, _kth_radii(r, k))
    recall = _coverage(r, f, _kth_radii(f, k))
    return {"precision": precision, "recall": recall}


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def grayscale(images: Tensor) -> Tensor:
    """``[B, 3, H, W]`` in [-1, 1] -> ``[B, 1, H, W]`` luma in [0, 1] (ITU-R BT.601 weights)."""
    x = (images.detach().to("cpu", torch.float64).clamp(-1, 1) + 1) / 2
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-image SSIM of two grayscale batches ``[B, 1, H, W]`` in [0, 1] (valid windows only)."""
    win = _gaussian_window(window, sigma)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = F.conv2d(a, win), F.conv2d(b, win)
    var_a = F.conv2d(a * a, win) - mu_a**2
    var_b = F.conv2d(b * b, win) - mu_b**2
    cov = F.conv2d(a * b, win) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def nearest_training(real: Tensor, fake: Tensor, chunk: int = 1024) -> dict[str, Tensor]:
    """For each generated feature vector: the distance to its nearest real (training) one, that
    real one's index, and the ratio of the two distances ``d(fake, x) / d(x, nearest other real)``.

    A ratio below 1 means the sample sits closer to a training image than any other training image
    does; far below 1, it is a near-copy. Identical real images (distance 0 to each other) are
    treated as one: their own-neighbour distance is taken over the others."""
    real, fake = _f64(real), _f64(fake)
    if len(real) < 2:
        raise ValueError(f"the memorisation check needs at least 2 real images, got {len(real)}")
    own = torch.cdist(real, real)
    own.fill_diagonal_(float("inf"))
    own[own == 0] = float("inf")  # exact duplicates in the training set would make every ratio infinite
    own_nn = own.min(dim=1).values
    own_nn[~torch.isfinite(own_nn)] = own[torch.isfinite(own)].min() if torch.isfinite(own).any() else 1.0
    dists, index = [], []
    for part in fake.split(chunk):
        d = torch.cdist(part, real)
        best = d.min(dim=1)
        dists.append(best.values)
        index.append(best.indices)
    dist, idx = torch.cat(dists), torch.cat(index)
    return {"distance": dist, "index": idx, "ratio": dist / own_nn[idx]}
