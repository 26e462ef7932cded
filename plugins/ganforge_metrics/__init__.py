"""Built-in evaluation: FID, KID, precision/recall, memorisation, structure (SSIM), and their feature extractors."""

from __future__ import annotations

from ganforge import hookimpl

from .extractors import Pixels, PixelsConfig
from .inception import InceptionConfig, InceptionFID
from .metrics import FID, KID, KIDConfig, Memorisation, MemorisationConfig, PrecisionRecall, PrecisionRecallConfig, Structure


@hookimpl
def register_metrics(register):
    register("fid", FID, summary="Frechet Inception Distance (lower is better)")
    register("kid", KID, KIDConfig, summary="Kernel Inception Distance, unbiased MMD^2, cubic kernel, mean/std over subsets")
    register("precision-recall", PrecisionRecall, PrecisionRecallConfig, aliases=("pr",),
             summary="Improved precision/recall (Kynkaanniemi et al. 2019), k-NN manifolds")
    register("memorisation", Memorisation, MemorisationConfig, aliases=("memorization", "nearest"),
             summary="Nearest training image of every sample; share closer than training images are to each other, near-copies")
    register("structure", Structure, aliases=("ssim",),
             summary="Translation models: grayscale SSIM between each source and its translation")


@hookimpl
def register_feature_extractors(register):
    register("inception-v3-fid", InceptionFID, InceptionConfig, aliases=("inception",),
             summary="The standard FID network (TF Inception-v3, pool3 2048-d); needs `ganforge metrics install`")
    register("pixels", Pixels, PixelsConfig, summary="Area-averaged pixels: no weights; scores carry its name")
