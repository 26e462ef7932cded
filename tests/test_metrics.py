"""The metric mathematics against independent reference computations on fixed features, and the
metric / feature-extractor plugin kinds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ganforge import hookimpl
from ganforge.eval.interfaces import Metric, score_key
from ganforge.core.plugins import PluginSet
from ganforge.testing import check_component

maths = pytest.importorskip("ganforge_metrics.maths")


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * (1 + shift) + shift


# --- FID ------------------------------------------------------------------------------------------
def _fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    import scipy.linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize(("n_real", "n_fake", "dim"), [(40, 60, 8), (25, 179, 16), (300, 200, 12), (30, 20, 64)])
def test_fid_matches_scipy_sqrtm(n_real, n_fake, dim):
    pytest.importorskip("scipy")
    real, fake = _features(n_real, dim, 0), _features(n_fake, dim, 1, shift=0.3)
    ours = maths.fid(real, fake)
    ref = _fid_scipy(real.numpy(), fake.numpy())
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    real = _features(50, 10, 3)
    assert maths.fid(real, real) == pytest.approx(0.0, abs=1e-9)
    assert maths.fid(real, real + 1.0) == pytest.approx(10.0, rel=1e-9)  # only the means differ: |1|^2 * 10


# --- KID ------------------------------------------------------------------------------------------
def _mmd_brute(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return float(xx + yy - 2 * xy)


def test_unbiased_mmd_matches_brute_force():
    x, y = _features(12, 5, 0), _features(15, 5, 1, shift=0.5)
    assert maths.mmd2_unbiased(x, y) == pytest.approx(_mmd_brute(x.numpy(), y.numpy()), rel=1e-9)


def test_kid_is_the_mean_over_subsets_of_brute_force_mmd():
    real, fake = _features(14, 4, 0), _features(20, 4, 1, shift=0.4)
    out = maths.kid(real, fake, subsets=5, subset_size=10, seed=7)
    # The same subsets, drawn the documented way, scored by brute force.
    g = torch.Generator().manual_seed(7)
    values = []
    for _ in range(5):
        ri, fi = torch.randperm(14, generator=g)[:10], torch.randperm(20, generator=g)[:10]
        values.append(_mmd_brute(real[ri].numpy(), fake[fi].numpy()))
    assert out["kid"] == pytest.approx(np.mean(values), rel=1e-9)
    assert out["kid_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    assert out["kid_subset_size"] == 10 and out["kid_subsets"] == 5


@pytest.mark.parametrize(("n_real", "n_fake", "size"), [(179, 1000, 179), (25, 1000, 25), (2000, 1500, 1000), (179, 50, 50)])
def test_kid_subset_size_adapts_to_small_sets(n_real, n_fake, size):
    assert maths.kid_subset_size(n_real, n_fake) == size
    out = maths.kid(_features(n_real, 6, 0), _features(n_fake, 6, 1), subsets=3)
    assert out["kid_subset_size"] == size


def test_kid_of_two_whole_sets_of_the_subset_size_is_one_value_without_a_fake_spread():
    real, fake = _features(25, 4, 0), _features(25, 4, 1, shift=0.3)
    out = maths.kid(real, fake, subsets=100)
    assert out["kid_subsets"] == 1 and out["kid_std"] == 0.0
    assert out["kid"] == pytest.approx(_mmd_brute(real.numpy(), fake.numpy()), rel=1e-9)


def test_kid_of_identical_distributions_is_near_zero_and_of_shifted_ones_positive():
    a, b = _features(400, 8, 0), _features(400, 8, 1)
    same = maths.kid(a, b, subsets=20)["kid"]
    shifted = maths.kid(a, b + 1.0, subsets=20)["kid"]
    assert abs(same) < 0.01 < shifted


# --- precision / recall ---------------------------------------------------------------------------
def _pr_brute(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(x):
        out = []
        for i in range(len(x)):
            d = sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)
            out.append(d[k - 1])
        return out

    def inside(points, centres, r):
        return np.mean([any(np.linalg.norm(p - c) <= rc for c, rc in zip(centres, r)) for p in points])

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_match_brute_force_knn(k):
    real, fake = _features(30, 4, 0), _features(40, 4, 1) * 0.6 + 0.8
    out = maths.precision_recall(real, fake, k=k)
    precision, recall = _pr_brute(real.numpy(), fake.numpy(), k)
    assert out["precision"] == pytest.approx(precision, abs=1e-12)
    assert out["recall"] == pytest.approx(recall, abs=1e-12)
    assert 0 < out["precision"] < 1 and 0 < out["recall"] < 1


def test_precision_recall_separate_quality_from_coverage():
    real = _features(200, 2, 0)
    collapsed = real[:20].repeat(10, 1) + 1e-3  # mode collapse: realistic but covers little
    out = maths.precision_recall(real, collapsed, k=3)
    assert out["precision"] > 0.9 and out["recall"] < 0.3


# --- structure (SSIM) ------------------------------------------------------------------------------
def _ssim_brute(a: np.ndarray, b: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for i in range(a.shape[0] - size + 1):
        for j in range(a.shape[1] - size + 1):
            pa, pb = a[i : i + size, j : j + size], b[i : i + size, j : j + size]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * pa * pa).sum() - ma**2, (w * pb * pb).sum() - mb**2
            cov = (w * pa * pb).sum() - ma * mb
            vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_matches_a_brute_force_window_loop():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 1, 20, 18, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.rand(1, 1, 20, 18, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert float(maths.ssim(a, b)[0]) == pytest.approx(_ssim_brute(a[0, 0].numpy(), b[0, 0].numpy()), rel=1e-9)


def test_structure_catches_a_translation_that_ignores_its_input(grumpy_images):
    from ganforge_metrics.metrics import Structure

    src = grumpy_images[:8]
    faithful = (src * 0.8 + 0.1).clamp(-1, 1)  # a colour change keeps the structure
    ignoring = grumpy_images[8:16]  # other cats: plausible images, unrelated to the input
    s = Structure()
    assert s.compute(src, src)["ssim"] == pytest.approx(1.0)
    assert s.compute(src, faithful)["ssim"] > 0.9
    assert s.compute(src, ignoring)["ssim"] < 0.3


@pytest.fixture(scope="module")
def grumpy_images():
    import os
    from pathlib import Path

    from ganforge.data.folders import load_image_folder

    folder = Path(os.environ["GANFORGE_DATA"]) / "grumpify-cats" / "grumpy"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    ds = load_image_folder(folder, 64, progress=False, max_images=16)
    return ds.get_batch(torch.arange(len(ds)))


# --- the plugin kinds -------------------------------------------------------------------------------
class _Median(Metric):
    primary = "median_gap"
    generic = {"median_gap": "mg"}

    def compute(self, real, fake):
        return {"median_gap": float((real.median(0).values - fake.median(0).values).abs().sum())}


def test_a_third_party_metric_registers_lists_and_passes_the_contract():
    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register("median-gap", _Median, summary="toy")

    plugins = PluginSet(strict=True)
    plugins.add(Plugin(), name="toy")
    assert plugins.registry.list("metric") == ["median-gap"]
    assert plugins.infos["toy"].provides == {"metric": ["median-gap"]}
    assert check_component(plugins.registry, "metric", "median-gap") == "ok"


def test_a_metric_that_returns_garbage_fails_the_contract_by_name():
    class Bad(Metric):
        primary = "x"

        def compute(self, real, fake):
            return {"y": float("nan")}

    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register("bad", Bad)

    plugins = PluginSet(strict=True)
    plugins.add(Plugin(), name="badplugin")
    with pytest.raises(AssertionError, match="metric 'bad'"):
        check_component(plugins.registry, "metric", "bad")


def test_scores_of_other_extractors_carry_their_name():
    fid = _Median()
    assert score_key(fid, "median_gap", "inception-v3-fid", standard=True) == "median_gap"
    assert score_key(fid, "median_gap", "pixels", standard=False) == "pixels/mg"
    from ganforge_metrics.metrics import FID, KID, Structure

    assert score_key(KID(), "kid_std", "pixels", False) == "pixels/kd_std"
    assert score_key(FID(), "fid", "pixels", False) == "pixels/fd"
    assert score_key(Structure(), "ssim", "pixels", False) == "ssim"
