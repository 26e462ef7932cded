"""The interfaces of evaluation plugins, and the plumbing around them (features, cache, names).

Two component kinds take part in an evaluation:

- a **feature extractor** (``register_feature_extractors``) maps images ``[B, 3, H, W]`` in
  ``[-1, 1]`` to features ``[B, D]``. Exactly one network is *standard*: the Inception-v3 FID
  network; only its scores are called FID / KID / precision / recall. Every other extractor's
  scores carry its name (``pixels/fd``), since they are not comparable with published numbers.
- a **metric** (``register_metrics``) turns features of real and generated images into scores
  (``inputs = "features"``), or compares each source image with its translation
  (``inputs = "pairs"``).

Real-image features are cached by content hash (of the images and of the extractor) in the cache
folder, ``~/.cache/ganforge`` unless ``GANFORGE_CACHE`` says otherwise, so a second evaluation
against the same reference set extracts features for the generated images only.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import torch
from torch import Tensor

from ganforge.core.errors import GanforgeError
from ganforge.core.files import CACHE_ENV, atomic_path, cache_dir  # noqa: F401 - CACHE_ENV, cache_dir: this module's API



class MetricsError(GanforgeError):
    """An evaluation that cannot run: missing network, too few images, a tampered weights file."""


class NetworkNotInstalled(MetricsError):
    """A feature extractor's optional network is simply absent (not tampered, not misnamed): scores
    during training are skipped with a note instead of stopping the run."""


# --- the interfaces plugins implement -------------------------------------------------------------
class FeatureExtractor:
    """Images ``[B, 3, H, W]`` in ``[-1, 1]`` -> features ``[B, D]`` (float32, on the CPU).

    ``standard`` is True only for the standard FID Inception network. ``fingerprint()`` must change
    whenever the features would (weights, preprocessing), since cached features are keyed by it.
    ``batch_size`` is how many images one call should get. Heavy state (weights) should load on the
    first call or in ``load()``, so building the component is cheap.
    """

    standard: ClassVar[bool] = False
    batch_size: int = 32

    def load(self) -> None:
        """Load weights now (raises ``MetricsError`` with what to install when they are absent)."""

    def fingerprint(self) -> str:
        raise NotImplementedError

    def __call__(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        """One line for reports: the network and its preprocessing."""
        return type(self).__name__


class Metric:
    """Scores from features (``inputs = "features"``: ``compute(real, fake)``) or from pairs of a
    source image and its translation (``inputs = "pairs"``: ``compute(sources, outputs)``, images in
    ``[-1, 1]``).

    ``compute`` returns ``{key: number}``; ``primary`` is the key that ranks checkpoints and
    ``higher_is_better`` its direction. ``generic`` renames key prefixes when the features do not come
    from the standard network (``{"fid": "fd"}``: Frechet distance in another feature space).
    ``min_images`` is the fewest images per set the metric accepts.

    A feature metric may also define ``per_sample(real, fake) -> {name: list}``: one value per
    generated image (e.g. the distance to its nearest training image), written to the evaluation's
    JSON beside the scores.

    ``extractor`` names the registered feature extractor the metric needs; ``None`` (the default)
    means any features will do, and the standard network is used unless the user chooses another.
    ``ganforge eval`` (without ``--extractor``) and scores during training (without
    ``eval.extractor``) extract features with it.
    """

    inputs: ClassVar[str] = "features"
    extractor: ClassVar[str | None] = None
    """The registered feature extractor this metric needs (e.g. ``"pixels"``); None: the standard
    network (Inception-v3), unless the user passes another with ``--extractor``/``eval.extractor``."""
    primary: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    generic: ClassVar[dict[str, str]] = {}
    min_images: ClassVar[int] = 2

    def compute(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        raise NotImplementedError


def score_key(metric: Metric, key: str, extractor: str, standard: bool) -> str:
    """The name a score is reported under: as is for the standard network (and for pair metrics),
    else ``extractor/generic-name`` (``pixels/fd``, ``pixels/precision``)."""
    if metric.inputs != "features" or standard:
        return key
    for prefix, generic in metric.generic.items():
        if key == prefix or key.startswith(prefix + "_"):
            key = generic + key[len(prefix):]
            break
    return f"{extractor}/{key}"


# --- features -------------------------------------------------------------------------------------
def images_digest(images: Tensor) -> str:
    """A content hash of an image set, as 8-bit pixels (what a PNG of it would hold)."""
    u8 = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).contiguous()
    h = hashlib.sha256()
    h.update(repr(tuple(u8.shape)).encode())
    h.update(u8.numpy().tobytes())
    return h.hexdigest()


def extract(extractor: FeatureExtractor, images: Tensor, *, label: str = "features", progress: bool = True, console=None) -> Tensor:
    """Features of ``images`` in batches, with a progress bar (on a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    extractor.load()
    batch = max(1, int(getattr(extractor, "batch_size", 32)))
    chunks = list(images.split(batch))
    out: list[Tensor] = []
    show = progress and (console is None or console.is_terminal)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not show, transient=True) as bar:
        task = bar.add_task(label, total=len(images))
        with torch.inference_mode():
            for chunk in chunks:
                feats = extractor(chunk)
                out.append(feats.detach().float().cpu().reshape(len(chunk), -1))
                bar.advance(task, len(chunk))
    return torch.cat(out) if out else torch.empty(0, 0)


def cached_features(
    extractor: FeatureExtractor, images: Tensor, *, label: str = "real images", progress: bool = True, console=None
) -> tuple[Tensor, bool]:
    """Features of a reference set, read from the cache when these exact images were seen before
    by this exact extractor; returns (features, came_from_cache). Files are safetensors."""
    from safetensors.torch import load_file, save_file

    key = hashlib.sha256(f"{extractor.fingerprint()}|{images_digest(images)}".encode()).hexdigest()[:32]
    path = cache_dir() / "features" / f"{key}.safetensors"
    if path.is_file():
        try:
            feats = load_file(str(path))["features"]
            if feats.shape[0] == len(images):
                return feats, True
        except Exception:  # noqa: BLE001 - a damaged cache file is simply recomputed
            pass
    feats = extract(extractor, images, label=label, progress=progress, console=console)
    try:
        with atomic_path(path) as tmp:
            save_file({"features": feats.contiguous()}, str(tmp))
    except OSError:
        pass  # a read-only cache only costs time
    return feats, False
