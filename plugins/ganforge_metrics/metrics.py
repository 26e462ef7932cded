"""The built-in metrics: FID, KID, precision/recall and memorisation (on features) and SSIM structure (on pairs)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ganforge import Metric

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


@dataclass(frozen=True)
class MemorisationConfig:
    copy_ratio: float = 0.5
    """A sample is flagged as a near-copy when its distance to its nearest training image is below this
    fraction of that image's distance to its own nearest other training image."""

    def __post_init__(self):
        if not 0.0 < self.copy_ratio <= 1.0:
            raise ValueError(f"copy_ratio must be in (0, 1], got {self.copy_ratio}")


class Memorisation(Metric):
    """How close samples come to the training images, in the metric's feature space.

    With a hundred training images a perfect FID can mean the generator learned to copy them. For
    each sample: the distance to its nearest training image and the ratio of that distance to the
    training image's own nearest-neighbour distance (``per_sample``). Scores:

    - ``memorisation_closer``: share of samples closer to a training image than that image is to
      any other training image (about half for samples as novel as a fresh draw of real images;
      near 1 when the generator copies);
    - ``memorisation_copies``: how many samples are near-copies (ratio below ``copy_ratio``);
    - ``memorisation_ratio``: the median ratio.
    """

    primary = "memorisation_closer"
    higher_is_better = False
    generic = {}
    min_images = 2

    def __init__(self, config: MemorisationConfig | None = None):
        self.config = config or MemorisationConfig()

    def compute(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        near = maths.nearest_training(real, fake)
        ratio = near["ratio"]
        return {
            "memorisation_closer": float((ratio < 1.0).double().mean()),
            "memorisation_copies": float((ratio < self.config.copy_ratio).sum()),
            "memorisation_ratio": float(ratio.median()),
        }

    def per_sample(self, real: Tensor, fake: Tensor) -> dict[str, list]:
        near = maths.nearest_training(real, fake)
        return {
            "nearest_distance": [round(float(d), 4) for d in near["distance"]],
            "nearest_index": [int(i) for i in near["index"]],
            "ratio": [round(float(r), 4) for r in near["ratio"]],
            "near_copy": [bool(r < self.config.copy_ratio) for r in near["ratio"]],
        }


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
