"""The built-in metrics: FID, KID, precision/recall (on features) and SSIM structure (on pairs)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ganforge.metrics import Metric

from . import maths


class FID(Metric):
    """Frechet Inception Distance (lower is better)."""

    primary = "fid"
    generic = {"fid": "fd"}
    min_images = 2

    def compute(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        return {"fid": maths.fid(real, fake)}


@dataclass(frozen=True)
class KIDConfig:
    subsets: int = 100
    """Random subsets the MMD is averaged over (the std over them is reported too)."""
    subset_size: int = 1000
    """Images per subset; smaller sets use their own size (reported as kid_subset_size)."""
    seed: int = 0

    def __post_init__(self):
        if self.subsets < 1:
            raise ValueError(f"subsets must be positive, got {self.subsets}")
        if self.subset_size < 2:
            raise ValueError(f"subset_size must be at least 2, got {self.subset_size}")


class KID(Metric):
    """Kernel Inception Distance: unbiased MMD^2, cubic kernel, mean over subsets (lower is better)."""

    primary = "kid"
    generic = {"kid": "kd"}
    min_images = 2

    def __init__(self, config: KIDConfig | None = None):
        self.config = config or KIDConfig()

    def compute(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        c = self.config
        return maths.kid(real, fake, subsets=c.subsets, subset_size=c.subset_size, seed=c.seed)


@dataclass(frozen=True)
class PrecisionRecallConfig:
    k: int = 3
    """Neighbourhood size of the k-NN manifold estimate (Kynkaanniemi et al. use 3)."""

    def __post_init__(self):
        if self.k < 1:
            raise ValueError(f"k must be positive, got {self.k}")


class PrecisionRecall(Metric):
    """Improved precision and recall (Kynkaanniemi et al. 2019): quality and coverage (higher is better)."""

    primary = "precision"
    higher_is_better = True

    def __init__(self, config: PrecisionRecallConfig | None = None):
        self.config = config or PrecisionRecallConfig()
        self.min_images = self.config.k + 1

    def compute(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        return maths.precision_recall(real, fake, k=self.config.k)


class Structure(Metric):
    """SSIM between each source image and its translation, in grayscale (higher keeps more structure)."""

    inputs = "pairs"
    primary = "ssim"
    higher_is_better = True
    min_images = 1

    def compute(self, sources: Tensor, outputs: Tensor) -> dict[str, float]:
        if sources.shape != outputs.shape:
            raise ValueError(f"sources {tuple(sources.shape)} and translations {tuple(outputs.shape)} differ in shape")
        return {"ssim": float(maths.ssim(maths.grayscale(sources), maths.grayscale(outputs)).mean())}
