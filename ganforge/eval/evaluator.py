"""Scoring checkpoints: `ganforge eval`, scores during training, and ``checkpoints/best``.

An evaluation generates images from a checkpoint (samples, or translations of source images),
extracts features of them and of real images with a registered feature extractor, and hands both to
registered metrics. Real-image features are cached by content hash (``ganforge.eval.interfaces``).

Everything that touches an algorithm's inference API goes through :func:`generate`, so a change of
that API is one edit here.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganforge.io.checkpoint import CHECKPOINTS, update_best, write_atomic_text
from ganforge.io.runfiles import METRICS_FILE, read_metrics
from ganforge.eval.interfaces import FeatureExtractor, Metric, MetricsError, NetworkNotInstalled, cached_features, extract, score_key
from ganforge.core.files import atomic_path
from ganforge.core.registry import Registry, plugin_code

STANDARD_EXTRACTOR = "inception-v3-fid"
DEFAULT_METRICS = ("fid", "kid", "precision-recall")
SAMPLE_METRICS = ("memorisation",)  # noise-to-image models only: do samples copy training images?
PAIR_METRICS = ("structure",)
MIN_REAL = 10  # fewer real images than this give scores too noisy to mean anything
EVAL_DIR = "eval"


# --- the one adapter onto the algorithms' inference API ----------------------------------------------
def is_translation(capabilities: Any) -> bool:
    """Score translations (of source images) rather than noise samples: the algorithm only translates."""
    return not getattr(capabilities, "sample", False) and bool(getattr(capabilities, "directions", ()))


def generate(algorithm: Any, nets: dict, num: int, seed: int, *, sources: Tensor | None = None,
             direction: str | None = None, batch: int = 64) -> Tensor:
    """Images in [-1, 1] on the CPU: ``num`` samples, or the translations of ``sources``."""
    from ganforge.core.components import SampleRequest

    with torch.no_grad():
        if sources is None:
            images, _ = algorithm.sample(nets, SampleRequest(num=num, seed=seed))
            return images[:num].float().clamp(-1, 1).cpu()
        fn = algorithm.translator(nets, direction or "a2b")
        device = next(next(iter(nets.values())).parameters()).device
        return torch.cat([fn(chunk.to(device)).float().clamp(-1, 1).cpu() for chunk in sources.split(batch)])


def translation_data(algorithm: Any, direction: str, domains: dict) -> tuple[Tensor, Tensor, str]:
    """A translation model's evaluation data from its training data: (source images, the real
    images its translations are compared with, the real images' domain), as the algorithm places
    them (``Algorithm.translation_fields``)."""
    from ganforge.data.items import fetch_fields

    try:
        (src, src_field), (dst, dst_field) = algorithm.translation_fields(direction)
    except ValueError as exc:
        raise MetricsError(str(exc)) from None
    for domain in (src, dst):
        if domain not in domains:
            raise MetricsError(f"the recipe's data has no domain '{domain}' (it has {', '.join(domains)})")

    fetched: dict[str, dict[str, Tensor]] = {}  # a paired model reads both sides from one domain

    def field(domain: str, name: str) -> Tensor:
        if domain not in fetched:
            fetched[domain] = fetch_fields(domains[domain], torch.arange(len(domains[domain])))
        values = fetched[domain]
        if name not in values:
            raise MetricsError(f"the recipe's '{domain}' data has no field '{name}' (it has {', '.join(values)})")
        return values[name]

    return field(src, src_field), field(dst, dst_field), dst


# --- results -------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    step: int
    scores: dict[str, float]
    extractor: str
    standard: bool
    network: str
    num_generated: int
    num_real: int
    real_source: str
    checkpoint: str = ""
    direction: str | None = None
    seed: int = 0
    real_cached: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    per_sample: dict[str, dict[str, list]] = field(default_factory=dict)  # metric -> name -> one value per image
    protocol: dict | None = None  # `--protocol`: its name and any departure from it (ganforge.eval.protocols)

    def as_dict(self) -> dict:
        return asdict(self)


def _all_images(dataset) -> Tensor:
    from ganforge.data.items import fetch_fields

    return fetch_fields(dataset, torch.arange(len(dataset)))["image"]


def load_real(folder: Path, image_size: int) -> Tensor:
    from ganforge.data.folders import load_image_folder

    return _all_images(load_image_folder(folder, image_size, progress=False))


def choose_extractor(metrics: dict[str, Metric], option: str = "--extractor {}") -> str:
    """The feature extractor for ``metrics`` when the user names none: the one the feature metrics
    declare they need (``Metric.extractor``), else the standard network."""
    wanted = {name: m.extractor for name, m in metrics.items()
              if m.inputs == "features" and getattr(m, "extractor", None)}
    choices = sorted(set(wanted.values()))
    if len(choices) > 1:
        listing = ", ".join(f"{name} ({extractor})" for name, extractor in wanted.items())
        raise MetricsError(
            f"these metrics need different feature extractors: {listing}",
            hint=f"score them separately, or choose one extractor for all: {option.format(choices[0])}",
        )
    return choices[0] if choices else STANDARD_EXTRACTOR


class Evaluator:
    """Metrics + one feature extractor + the features of one real-image set.

    ``extractor`` None: the one the metrics need (:func:`choose_extractor`). ``option`` says how the
    user chooses an extractor (``"--extractor {}"``, ``"--set eval.extractor={}"``), for messages.
    """

    def __init__(self, registry: Registry, metrics: list[str], extractor: str | None = None,
                 extractor_options: dict | None = None, *, progress: bool = True, console=None,
                 option: str = "--extractor {}"):
        self.registry = registry
        self.progress, self.console = progress, console
        self.option = option
        self.metrics: dict[str, Metric] = {}
        self.components = {}
        for name in metrics:
            comp = registry.get("metric", name)
            self.components[comp.name] = comp
            self.metrics[comp.name] = registry.build("metric", comp.name)
        if extractor is None:
            extractor = choose_extractor(self.metrics, option)
        self.extractor_component = registry.get("feature_extractor", extractor)
        self.extractor_name = self.extractor_component.name
        self.extractor: FeatureExtractor = registry.build("feature_extractor", self.extractor_name, extractor_options or {})
        self.standard = bool(getattr(self.extractor, "standard", False))
        self.real: Tensor | None = None
        self.real_features: Tensor | None = None
        self.per_sample: dict[str, dict[str, list]] = {}
        self.real_source = ""
        self.real_cached = False
        self.real_seconds = 0.0

    @property
    def needs_features(self) -> bool:
        return any(m.inputs == "features" for m in self.metrics.values())

    def load(self) -> None:
        """Load the feature network now, so a missing one fails before any work; a network that is not
        installed is reported with what to install and which other extractors need nothing."""
        if not self.needs_features:
            return
        try:
            with plugin_code(self.extractor_component, "loading its network"):
                self.extractor.load()
        except NetworkNotInstalled as exc:
            others = self.alternatives()
            if not others:
                raise
            instead = " or ".join(self.option.format(name) for name in others)
            hint = (f"{exc.hint}; or score with another feature extractor, which needs no download: {instead} "
                    "(its scores are named after it, not FID/KID)") if exc.hint else None
            raise NetworkNotInstalled(exc.message, hint=hint or f"score with another feature extractor: {instead}") from exc

    def alternatives(self) -> list[str]:
        """Registered feature extractors other than the one in use, the non-standard ones (no weights
        to install) first."""
        names = [n for n in self.registry.list("feature_extractor") if n != self.extractor_name]
        standard = lambda n: bool(getattr(self.registry.get("feature_extractor", n).builder, "standard", False))  # noqa: E731
        return sorted(names, key=standard)

    def set_real(self, images: Tensor, source: str) -> None:
        if len(images) < MIN_REAL:
            raise MetricsError(
                f"only {len(images)} real image(s) in {source}: scores need at least {MIN_REAL} (25 or more recommended)",
                hint="point --real at a folder with more images",
            )
        self.real, self.real_source = images, source
        if self.needs_features:
            t0 = time.perf_counter()
            with plugin_code(self.extractor_component, "extracting features of the real images"):
                self.real_features, self.real_cached = cached_features(
                    self.extractor, images, label=f"features: real ({len(images)})", progress=self.progress,
                    console=self.console,
                )
            self.real_seconds = time.perf_counter() - t0

    def score(self, generated: Tensor, *, sources: Tensor | None = None) -> tuple[dict[str, float], dict[str, float]]:
        """Scores of generated images (and of source/translation pairs); returns (scores, seconds).
        Per-image values of metrics that have them are left in ``self.per_sample``."""
        seconds: dict[str, float] = {}
        scores: dict[str, float] = {}
        self.per_sample: dict[str, dict[str, list]] = {}
        fake_features = None
        if self.needs_features:
            assert self.real_features is not None, "set_real() first"
            t0 = time.perf_counter()
            with plugin_code(self.extractor_component, "extracting features of the generated images"):
                fake_features = extract(self.extractor, generated, label=f"features: generated ({len(generated)})",
                                        progress=self.progress, console=self.console)
            seconds["generated_features"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for name, metric in self.metrics.items():
            if metric.inputs == "pairs":
                if sources is None:
                    continue  # a pair metric has nothing to compare for noise-to-image models
                with plugin_code(self.components[name], "computing scores"):
                    values = metric.compute(sources, generated)
            else:
                need = max(2, int(metric.min_images))
                n_real, n_fake = len(self.real_features), len(fake_features)
                if min(n_real, n_fake) < need:
                    raise MetricsError(f"metric '{name}' needs at least {need} images per set, got {n_real} real and {n_fake} generated")
                with plugin_code(self.components[name], "computing scores"):
                    values = metric.compute(self.real_features, fake_features)
                    if callable(getattr(metric, "per_sample", None)):
                        self.per_sample[name] = dict(metric.per_sample(self.real_features, fake_features))
            with plugin_code(self.components[name], "returning its scores"):
                for key, value in values.items():
                    scores[score_key(metric, key, self.extractor_name, self.standard)] = float(value)
        seconds["metrics"] = time.perf_counter() - t0
        return scores, seconds

    def primary(self, metric: str) -> tuple[str, bool]:
        """The reported key of a metric's main score and whether higher is better."""
        m = self.metrics[self.registry.get("metric", metric).name]
        return score_key(m, m.primary, self.extractor_name, self.standard), bool(m.higher_is_better)


def data_label(recipe, domain: str | None = None) -> str:
    """A short name for a recipe's data (its folder when it has one) and, for several domains, the domain."""
    config = recipe.data.config
    label = str(getattr(config, "path", "") or "") or recipe.data.name
    if domain is None:
        return label
    folder = getattr(config, f"domain_{domain}", None)  # unpaired folders name each domain's sub-folder
    return f"{label}/{folder}" if isinstance(folder, str) and folder else f"{label} (domain {domain})"


def default_metrics(registry: Registry, translation: bool) -> list[str]:
    names = [m for m in DEFAULT_METRICS if registry.has("metric", m)]
    extra = PAIR_METRICS if translation else SAMPLE_METRICS
    return names + [m for m in extra if registry.has("metric", m)]


def evaluate_checkpoint(evaluator: Evaluator, loaded: Any, *, num: int, seed: int = 0,
                        sources: Tensor | None = None, direction: str | None = None,
                        nearest_image: Path | None = None) -> EvalResult:
    """Score one loaded checkpoint (``ganforge.io.inference.load_for_inference``) against ``evaluator``'s real set;
    with ``nearest_image``, also draw the samples closest to training images beside them (memorisation)."""
    t0 = time.perf_counter()
    if sources is not None:
        sources = sources[:num]
    algo = evaluator.registry.get("algorithm", loaded.recipe.algorithm.name)
    with plugin_code(algo, "generating images for evaluation"):
        images = generate(loaded.algorithm, loaded.nets, num, seed, sources=sources, direction=direction)
    gen_seconds = time.perf_counter() - t0
    scores, seconds = evaluator.score(images, sources=sources)
    near = evaluator.per_sample.get("memorisation")
    if nearest_image is not None and near and evaluator.real is not None:
        write_nearest(nearest_image, images, evaluator.real, near)
    return EvalResult(
        step=int(loaded.step), scores=scores, extractor=evaluator.extractor_name, standard=evaluator.standard,
        network=evaluator.extractor.describe(), num_generated=len(images), num_real=len(evaluator.real),
        real_source=evaluator.real_source, checkpoint=str(getattr(loaded, "path", "")), direction=direction, seed=seed,
        real_cached=evaluator.real_cached, per_sample=dict(evaluator.per_sample),
        seconds={"generate": round(gen_seconds, 3), "real_features": round(evaluator.real_seconds, 3),
                 **{k: round(v, 3) for k, v in seconds.items()}},
    )


# --- presentation ----------------------------------------------------------------------------------
def write_nearest(path: Path, generated: Tensor, real: Tensor, near: dict[str, list], count: int = 8) -> Path:
    """The ``count`` samples closest to a training image (smallest distance ratio), top row, above
    their nearest training images: a look at what the memorisation scores mean."""
    from ganforge.data.images import save_image_grid

    order = sorted(range(len(near["ratio"])), key=lambda i: near["ratio"][i])[:count]
    top = generated[order]
    bottom = real[[near["nearest_index"][i] for i in order]].float()
    return save_image_grid(torch.cat([top, bottom]), path, nrow=len(order))


def memorisation_line(scores: dict[str, float], num: int) -> str | None:
    """One sentence on the memorisation scores, for the console."""
    key = next((k for k in scores if k.endswith("memorisation_closer")), None)
    if key is None:
        return None
    prefix = key[: -len("memorisation_closer")]
    copies = int(scores.get(prefix + "memorisation_copies", 0))
    return (f"memorisation: {scores[key]:.0%} of {num} samples are closer to a training image than it is to any other "
            f"training image; {copies} near-cop{'y' if copies == 1 else 'ies'} (under half that distance)")


def _is_detail(key: str, scores: dict[str, float]) -> bool:
    for suffix in ("_std", "_subset_size", "_subsets"):
        if key.endswith(suffix) and key[: -len(suffix)] in scores:
            return True
    return False


def score_rows(scores: dict[str, float]) -> list[tuple[str, float, float | None, str]]:
    """(name, value, std or None, note) per main score; std and subset details fold into their row."""
    rows = []
    for key, value in scores.items():
        if _is_detail(key, scores):
            continue
        std = scores.get(f"{key}_std")
        note = ""
        if f"{key}_subset_size" in scores:
            note = f"subsets of {int(scores[f'{key}_subset_size'])} x {int(scores.get(f'{key}_subsets', 0))}"
        rows.append((key, value, std, note))
    return rows


def format_value(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def plot_curve(results: list[EvalResult], out: Path) -> Path | None:
    """Every main score against the training step, one panel each."""
    if not results:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, *_ in score_rows(results[0].scores)]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.2 * len(keys) + 0.6), dpi=100, sharex=True, squeeze=False)
    steps = [r.step for r in results]
    for ax, key in zip(axes[:, 0], keys):
        values = [r.scores.get(key, float("nan")) for r in results]
        stds = [r.scores.get(f"{key}_std") for r in results]
        ax.plot(steps, values, marker="o", linewidth=1)
        if all(s is not None for s in stds):
            lo = [v - s for v, s in zip(values, stds)]
            hi = [v + s for v, s in zip(values, stds)]
            ax.fill_between(steps, lo, hi, alpha=0.2)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(f"{results[0].num_generated} generated vs {results[0].num_real} real, {results[0].extractor}")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return out


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic_text(path, json.dumps(payload, indent=2) + "\n")
    return path


# --- the best checkpoint ---------------------------------------------------------------------------
# --- scores during training --------------------------------------------------------------------------
class TrainingEvaluator:
    """Scores the run's inference networks at checkpoint time (``[eval]`` in the recipe), logs them to
    metrics.jsonl and keeps ``checkpoints/best`` pointing at the best checkpoint so far."""

    @classmethod
    def create(cls, run, notice=None) -> "TrainingEvaluator | None":
        cfg = getattr(run.recipe, "eval", None)
        if cfg is None or cfg.every <= 0 or run.recipe.train.steps < cfg.every:
            return None  # off, or a run too short to be scored: nothing to load
        return cls(run, cfg, notice)

    def __init__(self, run, cfg, notice=None):
        self.cfg = cfg
        self.evaluator: Evaluator | None = None
        if not run.is_main:
            return
        evaluator = Evaluator(run.registry, [cfg.metric], cfg.extractor, progress=False,
                              option="--set eval.extractor={}")
        try:
            evaluator.load()  # a missing network fails here, before any training
        except NetworkNotInstalled as exc:
            if cfg.if_missing == "error":
                raise
            # Recipes score by default; without the optional network the run trains on, unscored.
            # (The other processes keep their object: their barriers stay matched.)
            if notice is not None:
                notice(f"scores during training skipped: {exc.message}; {exc.hint} "
                       "(or --set eval.every=0 to silence this)")
            return
        algo = run.algorithm
        caps = algo.capabilities(run.data_info)
        self.direction = caps.directions[0] if is_translation(caps) else None
        if self.direction:
            sources, real, dst = translation_data(algo, self.direction, run.data)
            self.sources = sources[: cfg.num]
            label = f"{data_label(run.recipe, dst if len(run.data) > 1 else None)} (training data)"
        else:
            self.sources = None
            domain = algo.domains[0]
            real, label = _all_images(run.data[domain]), f"{data_label(run.recipe)} (training data)"
        if len(real) < MIN_REAL and cfg.if_missing == "skip":
            # A recipe that scores by default, trained on a user's tiny folder: train on, unscored.
            if notice is not None:
                notice(f"scores during training skipped: only {len(real)} real image(s) in {label}, scores need "
                       f"at least {MIN_REAL} (--set eval.every=0 silences this)")
            return
        evaluator.set_real(real, label)
        self.key, self.higher = evaluator.primary(cfg.metric)
        self.evaluator = evaluator

    def due(self, run) -> bool:
        """At every multiple of ``every`` and at the end, except that a run shorter than ``every``
        (a smoke test, a quick look) is not scored at all."""
        total = run.recipe.train.steps
        return run.step % self.cfg.every == 0 or (run.step == total and total >= self.cfg.every)

    def after_checkpoint(self, run, say=None) -> dict[str, float] | None:
        """Score the checkpoint just written when due; returns the scores (on the main process)."""
        if not self.due(run):
            return None
        scores = self._evaluate(run, say) if self.evaluator is not None else None
        if run.world > 1:
            run.accelerator.wait_for_everyone()
        return scores

    def _evaluate(self, run, say) -> dict[str, float]:
        nets = run.algorithm_call("eval_networks")
        modes = {name: net.training for name, net in nets.items()}
        for net in nets.values():
            net.eval()
        t0 = time.perf_counter()
        try:
            with plugin_code(run.algorithm_component, f"generating images for evaluation at step {run.step}"):
                images = generate(run.algorithm, nets, self.cfg.num, self.cfg.seed, sources=self.sources,
                                  direction=self.direction)
        finally:
            for name, net in nets.items():
                net.train(modes[name])
        scores, _ = self.evaluator.score(images, sources=self.sources)
        seconds = time.perf_counter() - t0
        checkpoints = run.run_dir / CHECKPOINTS
        name = f"step-{run.step:08d}"
        value = scores.get(self.key, float("nan"))
        best = (checkpoints / name).is_dir() and update_best(checkpoints, name, run.step, self.key, value, self.higher)
        record = {"step": run.step, "time": _last_time(run.run_dir / METRICS_FILE), "eval": scores,
                  "eval_seconds": round(seconds, 3), "eval_num": len(images)}
        with open(run.run_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if say is not None:
            mark = "  (best so far: checkpoints/best)" if best else ""
            say.line(f"eval step {run.step}: {self.key} {format_value(value)} ({len(images)} images, {seconds:.0f}s){mark}")
        return scores


def _last_time(path: Path) -> float:
    rows = read_metrics(path)
    return float(rows[-1].get("time", 0.0)) if rows else 0.0
