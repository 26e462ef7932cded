"""Recipes: TOML files that compose registered components into a training run.

A recipe names an algorithm, the components for each of the sections that algorithm declares,
the data, optimisers, the training length and the logging cadence. Every ``name`` below is a
registered component name (``ganforge plugins`` lists them); the core knows none of them::

    description = "what this recipe trains"
    extends = "another-recipe"      # optional: another recipe (name or relative path)
    seed = 0

    [algorithm]
    name = "<algorithm>"
    [data]
    name = "<dataset>"
    path = "some/folder"            # relative to the data root GANFORGE_DATA
    image_size = 64
    [generator]                     # one table per section the algorithm declares
    name = "<generator>"
    [discriminator]
    name = "<discriminator>"
    [loss]
    name = "<loss>"
    [augment.<augmentation>]        # one table per augmentation; `= false` removes an inherited one
    some_option = "value"
    [optim.generator]               # one table per optimiser group the algorithm declares
    lr = 2e-4
    [train]
    steps = 6400
    batch_size = 16
    [log]
    sample_every = 400
    [eval]                          # optional: score checkpoints and keep checkpoints/best
    every = 1600                    # steps between scores (0: off); a scored step also gets a checkpoint
    metric = "kid"

Components whose config has an ``image_size`` field inherit ``data.image_size`` unless the recipe
sets it, so the size is stated once. Likewise components whose config has a ``num_classes`` field
(class-conditional networks) inherit the data's number of classes unless the recipe sets it; a value
the recipe sets that differs from the data's is an error. The count comes from the dataset config's
``list_classes()`` when it has one (class names from folder names, without reading an image);
otherwise the trainer fills it in from the built dataset (:func:`apply_data_classes`).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import tomli_w

from ganforge.core.config import build_dataclass, config_to_dict, field_types
from ganforge.core.errors import DataError, GanforgeError, RecipeError, RecipeErrors, UnknownComponentError, did_you_mean
from ganforge.core.registry import Registry, plugin_code

class UnknownRecipeError(RecipeError):
    """A recipe name (given, or in ``extends``) that no plugin registers."""


SET_SYNTAX = "--set section.key=value (value in TOML syntax, e.g. train.steps=200 or loss.name=\"hinge\")"


DEFAULT_OPTIMIZER = "adam"
DEFAULT_SCHEDULE = "constant"
DECAY_SCHEDULE = "linear"  # what train.lr_decay_start < 1 means for groups that name no schedule


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    # "auto": bf16 autocast on a CPU with native bf16 instructions, fp32 elsewhere (ganforge.train.hardware).
    mixed_precision: Literal["no", "bf16", "fp16", "auto"] = "no"
    # Shortcut: groups that name no [optim.GROUP.schedule] decay linearly to zero from this
    # fraction of training (1.0: they keep a constant rate).
    lr_decay_start: float = 1.0
    # Torch threads per process; 0 means: the machine's cores divided by the number of processes.
    threads: int = 0
    # What to do on a non-finite loss: stop, or roll back to the last checkpoint with a lower lr.
    on_nan: Literal["stop", "rollback"] = "stop"
    rollback_lr_factor: float = 0.5

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError(f"train.steps must be a positive integer, got {self.steps}")
        if self.batch_size <= 0:
            raise ValueError(f"train.batch_size must be a positive integer, got {self.batch_size}")
        if not 0.0 <= self.lr_decay_start <= 1.0:
            raise ValueError(f"train.lr_decay_start must be between 0 and 1, got {self.lr_decay_start}")
        if self.threads < 0:
            raise ValueError(f"train.threads must be 0 (auto) or positive, got {self.threads}")
        if not 0.0 < self.rollback_lr_factor < 1.0:
            raise ValueError(f"train.rollback_lr_factor must be between 0 and 1, got {self.rollback_lr_factor}")


@dataclass(frozen=True)
class LogConfig:
    every: int = 10  # steps between metric log lines
    sample_every: int = 200  # steps between progress grids
    checkpoint_every: int = 500  # steps between checkpoints (one is always written at the end)
    keep: int = 3  # checkpoints kept (the newest K)
    num_samples: int = 64  # images in a progress grid
    gif: bool = True  # progress GIF of the grids at the end
    plots: bool = True  # loss curves at the end

    def __post_init__(self):
        for key in ("every", "sample_every", "checkpoint_every", "keep", "num_samples"):
            if getattr(self, key) <= 0:
                raise ValueError(f"log.{key} must be a positive integer, got {getattr(self, key)}")


@dataclass(frozen=True)
class EvalConfig:
    every: int = 0  # steps between scores, taken at checkpoint time and at the end (0: off)
    metric: str = "kid"  # the registered metric whose main score picks checkpoints/best
    num: int = 500  # generated images (or translated sources) per evaluation
    # The feature extractor; None: the one the metric needs (Metric.extractor), else the standard
    # network. Only the standard one's scores are called FID/KID.
    extractor: str | None = None
    seed: int = 0  # noise seed of the evaluation samples (the same noise at every evaluation)
    if_missing: str = "skip"  # no feature network, or under 10 real images: "skip" scores (with a note) or "error"

    def __post_init__(self):
        if self.every < 0:
            raise ValueError(f"eval.every must be 0 (off) or a positive number of steps, got {self.every}")
        if self.num < 2:
            raise ValueError(f"eval.num must be at least 2, got {self.num}")
        if self.if_missing not in ("skip", "error"):
            raise ValueError(f"eval.if_missing must be 'skip' or 'error', got '{self.if_missing}'")


TOP_LEVEL = {"name", "description", "extends", "seed", "algorithm", "data", "augment", "optim", "train", "log", "eval"}
CORE_SECTIONS = {"train": TrainConfig, "log": LogConfig}


@dataclass(frozen=True)
class Part:
    """A component chosen by a recipe section: its registered name and its validated config."""

    kind: str
    name: str
    config: Any

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "config": config_to_dict(self.config)}


@dataclass(frozen=True)
class OptimPart:
    """One optimiser group: the optimiser (its config holds ``lr``) and its learning-rate schedule."""

    optimizer: Part
    schedule: Part

    @property
    def lr(self) -> float:
        return float(self.optimizer.config.lr)


@dataclass
class Recipe:
    name: str
    description: str
    seed: int
    algorithm: Part
    data: Part
    parts: dict[str, Part]  # section -> component (generator, discriminator, loss, ...)
    augment: list[Part]
    optim: dict[str, OptimPart]
    train: TrainConfig
    log: LogConfig
    raw: dict = field(repr=False)  # the fully resolved TOML (without `extends`)
    source: str = ""
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Sections whose num_classes follows the data but could not be counted when the recipe was read
    # (the dataset config has no list_classes(), or its files were absent): apply_data_classes fills them.
    classes_from_data: tuple[str, ...] = ()

    def to_toml(self) -> str:
        return tomli_w.dumps(self.raw)


# --- reading and merging -------------------------------------------------------------------------
SCALARS = {"name", "description", "extends", "seed"}  # top-level keys that are not component sections
FIXED_SECTIONS = ("augment", "optim")  # tables keyed by augmentation / optimiser group, not components


def _read_toml(path: Path | Any, label: str) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {label}") from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {label}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RecipeError(f"recipe {label} is not a UTF-8 text file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"malformed TOML in {label}: {exc}", hint="fix the file at that line and column") from None


def _normalize(data: dict) -> dict:
    """``generator = "dcgan"`` is shorthand for ``[generator] name = "dcgan"`` (in place; returns data)."""
    for key, value in list(data.items()):
        if key not in SCALARS and key not in FIXED_SECTIONS and isinstance(value, str):
            data[key] = {"name": value}
    return data


def _looks_like_path(ref: str) -> bool:
    return ref.endswith(".toml") or "/" in ref or "\\" in ref


def _locate(ref: str, registry: Registry, relative_to: Path | None, referrer: str | None = None) -> tuple[Any, str]:
    """A recipe reference (registered name or path) -> (file, label).

    A relative path in ``extends`` is relative to the recipe that says it (``relative_to``), then to
    the current folder; a path given by the user is relative to the current folder.
    """
    context = f" (extended by {referrer})" if referrer else ""
    if _looks_like_path(ref):
        given = Path(ref).expanduser()
        candidates = [given]
        if not given.is_absolute() and relative_to is not None:
            candidates.insert(0, relative_to / given)
        for path in candidates:
            if path.is_file():
                return path, str(path)
        looked = ", ".join(str(c) for c in candidates)
        raise RecipeError(
            f"recipe file not found: {ref}{context} (looked for {looked})",
            hint="pass a registered recipe name or an existing .toml path",
        )
    if not registry.has("recipe", ref):
        known = registry.list("recipe")
        raise UnknownRecipeError(
            f"unknown recipe '{ref}'{context}{did_you_mean(ref, known)}",
            hint="`ganforge recipes` lists them; a path to a .toml file works too",
        )
    comp = registry.get("recipe", ref)
    return comp.path, f"{ref} ({comp.plugin} plugin)"


def _file_key(file: Any, label: str) -> str:
    if isinstance(file, Path):
        try:
            return str(file.resolve())
        except OSError:
            return str(file)
    return label


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _names_component(path: tuple[str, ...]) -> bool:
    """Whether the table at ``path`` names one component, so a new ``name`` there drops old options:
    component sections, ``optim.GROUP`` (its optimiser) and ``optim.GROUP.schedule``."""
    if len(path) == 1:
        return path[0] not in FIXED_SECTIONS and path[0] not in SCALARS
    return path[0] == "optim" and (len(path) == 2 or (len(path) == 3 and path[2] == "schedule"))


def _implicit_name(path: tuple[str, ...]) -> str | None:
    """The component a table means when it names none (optimiser groups and schedules have defaults)."""
    if path[0] == "optim":
        return DEFAULT_OPTIMIZER if len(path) == 2 else DEFAULT_SCHEDULE
    return None


def _merge(base: dict, top: dict, path: tuple[str, ...] = ()) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        here = (*path, k)
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            # A different component name starts that table afresh: options of the old one would not apply.
            if _names_component(here) and "name" in v and v["name"] != out[k].get("name", _implicit_name(here)):
                out[k] = copy.deepcopy(v)
            else:
                out[k] = _merge(out[k], v, here)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve_chain(
    ref: str, registry: Registry, relative_to: Path | None, seen: list[tuple[str, str]], referrer: str | None = None
) -> tuple[dict, dict[str, str]]:
    file, label = _locate(ref, registry, relative_to, referrer)
    key = _file_key(file, label)
    if key in [k for k, _ in seen]:
        raise RecipeError("recipe inheritance loops: " + " -> ".join([lbl for _, lbl in seen] + [label]))
    data = _normalize(_read_toml(file, label))
    origins = {k: label for k in _flatten(data)}
    for k, v in data.items():
        if isinstance(v, dict):
            origins.setdefault(k, label)  # a section (even an empty one) was named in this file
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or not parent.strip():
            raise RecipeError(f"'extends' in {label} must be a recipe name or path, got {parent!r}")
        here = file.parent if isinstance(file, Path) else None
        base, base_origins = _resolve_chain(parent.strip(), registry, here, seen + [(key, label)], referrer=label)
        base.pop("name", None)
        base_origins.update(origins)
        return _merge(base, data), base_origins
    return data, origins


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"section.key=value"`` -> (``["section", "key"]``, value); the value is TOML, or a bare word."""
    if "=" not in item:
        raise RecipeError(f"malformed override '{item}': expected {SET_SYNTAX}")
    key, _, text = item.partition("=")
    key = key.strip()
    if not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", key):
        raise RecipeError(f"malformed override key '{key}' in '{item}': expected {SET_SYNTAX}")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        # A bare word (generator.norm=instance) is taken as a string; anything else must be TOML.
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_,\-\.]*", text):
            value = text
        else:
            raise RecipeError(f"cannot parse the value of override '{item}' as TOML", hint=SET_SYNTAX) from None
    return key.split("."), value


def apply_overrides(data: dict, origins: dict[str, str], overrides: list[str]) -> dict:
    """Apply ``--set`` overrides to a recipe dict (returns a new dict; records origins in place)."""
    data = _normalize(copy.deepcopy(data))
    for item in overrides:
        path, value = parse_override(item)
        if path[0] == "extends":
            raise RecipeError(f"override '{item}': 'extends' cannot be overridden", hint="pass that recipe instead")
        node = data
        for depth, part in enumerate(path[:-1]):
            current = node.get(part)
            if isinstance(current, str) and _names_component(tuple(path[: depth + 1])) and part not in SCALARS:
                current = node[part] = {"name": current}  # shorthand `x = "name"` gets options
            if depth == 1 and path[0] == "augment" and isinstance(current, bool):
                current = node[part] = {}  # augment.x was true/false: now it gets options
            if current is not None and not isinstance(current, dict):
                raise RecipeError(f"override '{item}': '{'.'.join(path[: depth + 1])}' is not a section")
            node = node.setdefault(part, {})
        table = ".".join(path[:-1])
        if path[-1] == "name" and _names_component(tuple(path[:-1])) and node.get("name", _implicit_name(tuple(path[:-1]))) not in (None, value):
            # Switching component: its old options no longer apply (options set by --set stay).
            for k in [k for k in node if not str(origins.get(f"{table}.{k}", "")).startswith("--set")]:
                del node[k]
        node[path[-1]] = value
        origins[".".join(path)] = f"--set {item}"
    return data


# --- validation ----------------------------------------------------------------------------------
def _origin_of(origins: dict[str, str], key: str) -> str | None:
    """Where a key or section was set: the key itself, else the first key inside that section."""
    if key in origins:
        return origins[key]
    prefix = key + "."
    return next((v for k, v in origins.items() if k.startswith(prefix)), None)


def _table(data: dict, section: str, origins: dict[str, str], label: str) -> dict:
    value = data.get(section, {})
    if not isinstance(value, dict):
        where = _origin_of(origins, section) or label
        raise RecipeError(f"'{section}' in recipe {where} must be a table ([{section}]), got {value!r}")
    return value


def _component(registry: Registry, data: dict, section: str, kind: str, origins: dict[str, str], label: str) -> Part:
    spec = data.get(section)
    if spec is None:
        raise RecipeError(f"recipe {label} has no [{section}] section", hint=f"add [{section}] with name = \"<a registered {kind}>\"")
    if isinstance(spec, str):
        spec = {"name": spec}
        data[section] = spec
    where = _origin_of(origins, f"{section}.name") or _origin_of(origins, section) or label
    if not isinstance(spec, dict) or "name" not in spec:
        raise RecipeError(f"[{section}] in recipe {where} must name a registered {kind} (name = \"...\")")
    if not isinstance(spec["name"], str):
        raise RecipeError(f"'{section}.name' in recipe {where} must be a string naming a registered {kind}, got {spec['name']!r}")
    options = {k: v for k, v in spec.items() if k != "name"}
    comp = _get(registry, kind, spec["name"], f"{section}.name", where)
    config = build_dataclass_for(comp, options, section, origins)
    return Part(kind=kind, name=comp.name, config=config)


def _get(registry: Registry, kind: str, name: str, key: str, where: str):
    try:
        return registry.get(kind, name)
    except UnknownComponentError as exc:
        raise UnknownComponentError(f"{exc.message} (recipe key '{key}', set in {where})", hint=exc.hint) from None


def build_dataclass_for(comp, options: dict, section: str, origins: dict[str, str]):
    if comp.config is None:
        if options:
            raise RecipeError(f"{comp.kind} '{comp.name}' in [{section}] takes no options, got: {', '.join(options)}")
        return None
    return build_dataclass(comp.config, options, section=section, origin=origins.get, what=f"{comp.kind} '{comp.name}'")


def _inherit_image_size(registry: Registry, kind: str, section: str, spec: Any, data_part: Part, origins: dict[str, str]) -> None:
    """Give ``spec`` the dataset's image_size when its component has that option and the recipe left it unset."""
    image_size = getattr(data_part.config, "image_size", None)
    if image_size is None or not isinstance(spec, dict) or "image_size" in spec:
        return
    name = spec.get("name")
    if not isinstance(name, str) or not registry.has(kind, name):
        return  # reported with context where the component is resolved
    comp = registry.get(kind, name)
    if comp.config is not None and "image_size" in field_types(comp.config):
        spec["image_size"] = image_size
        source = origins.get("data.image_size")
        origins[f"{section}.image_size"] = (
            f"{source}, via data.image_size" if source else f"the default data.image_size of dataset '{data_part.name}'"
        )


NUM_CLASSES = "num_classes"


def data_classes(registry: Registry, data_part: Part | None) -> tuple[str, ...] | None:
    """The class names of a recipe's data, when its dataset config lists them (``list_classes()``:
    from folder names, without reading an image); None when it cannot, or the files are not there."""
    lister = getattr(data_part.config, "list_classes", None) if data_part is not None else None
    if not callable(lister):
        return None
    comp = registry.get("dataset", data_part.name)
    try:
        with plugin_code(comp, "listing its classes"):
            names = tuple(str(n) for n in lister())
    except DataError:
        return None  # e.g. the data is not on this machine: building the dataset will say so
    return names or None


def _has_num_classes(registry: Registry, kind: str, spec: Any) -> bool:
    name = spec.get("name") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not registry.has(kind, name):
        return False  # reported with context where the component is resolved
    comp = registry.get(kind, name)
    return comp.config is not None and NUM_CLASSES in field_types(comp.config)


def _classes_mismatch(section: str, what: str, given: Any, names: Sequence[str], where: str | None) -> RecipeError:
    listing = ", ".join(names)
    return RecipeError(
        f"{what} in [{section}] knows {given} classes but the data has {len(names)} ({listing})"
        f"{f': {section}.{NUM_CLASSES} = {given} is set in {where}' if where else ''}",
        hint=f"remove {section}.{NUM_CLASSES} (it follows the data), or set {section}.{NUM_CLASSES} = {len(names)}",
    )


def _inherit_num_classes(registry: Registry, kind: str, section: str, spec: Any, classes: tuple[str, ...] | None,
                         origins: dict[str, str], pending: list[str], problems: "_Problems") -> None:
    """Give ``spec`` the data's class count when its component has ``num_classes`` and the recipe left
    it unset (``pending`` when the count is not known yet); an explicit value must match the data."""
    if not _has_num_classes(registry, kind, spec):
        return
    if NUM_CLASSES not in spec:
        if classes is None:
            pending.append(section)
            return
        spec[NUM_CLASSES] = len(classes)
        origins[f"{section}.{NUM_CLASSES}"] = f"the data's {len(classes)} classes ({', '.join(classes)})"
    elif classes is not None and spec[NUM_CLASSES] != len(classes):
        what = f"{kind} '{spec['name']}'"
        problems.errors.append(_classes_mismatch(section, what, spec[NUM_CLASSES], classes,
                                                 origins.get(f"{section}.{NUM_CLASSES}")))


def apply_data_classes(recipe: Recipe, registry: Registry, class_names: Sequence[str]) -> Recipe:
    """The recipe with ``num_classes`` of the data's ``class_names`` in every section whose component
    has that option and the recipe left it to the data (``recipe.classes_from_data``); any other
    value that differs from the data's count is a :class:`RecipeError`.

    For the trainer, once the dataset is built and before the networks are: the class count of a
    dataset whose config cannot list its classes is known only then. Returns ``recipe`` itself when
    nothing changes, else an updated copy (its ``raw``, written to the run folder, included)."""
    names = tuple(class_names)
    if not names:
        return recipe
    changed: dict[str, Part] = {}
    for section, part in [("algorithm", recipe.algorithm), *recipe.parts.items()]:
        config = part.config
        if config is None or not dataclasses.is_dataclass(config) or NUM_CLASSES not in field_types(type(config)):
            continue
        given = getattr(config, NUM_CLASSES)
        if section in recipe.classes_from_data:
            if given != len(names):
                changed[section] = dataclasses.replace(part, config=dataclasses.replace(config, **{NUM_CLASSES: len(names)}))
        elif given != len(names):
            raise _classes_mismatch(section, f"{part.kind} '{part.name}'", given, names, None)
    if not changed:
        return recipe
    raw = copy.deepcopy(recipe.raw)
    for section, part in changed.items():
        raw.setdefault(section, {})[NUM_CLASSES] = len(names)
    return dataclasses.replace(
        recipe, raw=raw, algorithm=changed.get("algorithm", recipe.algorithm),
        parts={s: changed.get(s, p) for s, p in recipe.parts.items()}, classes_from_data=(),
    )


class _Problems:
    """Collects recipe problems so one run of validation reports every bad key, not just the first."""

    def __init__(self):
        self.errors: list[GanforgeError] = []

    def attempt(self, fn, *args, default=None):
        try:
            return fn(*args)
        except RecipeErrors as exc:
            self.errors.extend(exc.problems)
        except (RecipeError, UnknownComponentError) as exc:
            self.errors.append(exc)
        return default

    def raise_if_any(self, label: str) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise RecipeErrors(self.errors, label)


def resolve(data: dict, registry: Registry, origins: dict[str, str] | None = None, label: str = "<recipe>",
            *, list_classes: bool = True) -> Recipe:
    """Validate a merged recipe dict against the registry and return the typed recipe.

    Every problem is collected and reported together (a :class:`RecipeErrors` when there are several).
    ``list_classes=False`` leaves the data alone (a checkpoint's recipe: its class counts are stored).
    """
    origins = dict(origins or {})
    data = _normalize(copy.deepcopy(data))
    problems = _Problems()
    roles = _role_sections(data, registry)
    for key in data:
        if key not in TOP_LEVEL and key not in roles:
            where = _origin_of(origins, key) or label
            problems.errors.append(RecipeError(
                f"unknown section or key '{key}' in recipe {where}{did_you_mean(key, TOP_LEVEL | roles)}",
                hint="valid: " + ", ".join(sorted(TOP_LEVEL | roles)),
            ))

    data_part = problems.attempt(_component, registry, data, "data", "dataset", origins, label)
    classes = data_classes(registry, data_part) if list_classes else None
    pending: list[str] = []  # sections whose num_classes the data decides once it is built
    if data_part is not None:
        _inherit_image_size(registry, "algorithm", "algorithm", data.get("algorithm"), data_part, origins)
        _inherit_num_classes(registry, "algorithm", "algorithm", data.get("algorithm"), classes, origins, pending, problems)
    algorithm = problems.attempt(_component, registry, data, "algorithm", "algorithm", origins, label)
    algo_cls_sections = problems.attempt(_algorithm_sections, registry, data, default={}) if algorithm else {}

    parts: dict[str, Part] = {}
    for section, kind in algo_cls_sections.items():
        if data_part is not None:
            _inherit_image_size(registry, kind, section, data.get(section), data_part, origins)
            _inherit_num_classes(registry, kind, section, data.get(section), classes, origins, pending, problems)
        part = problems.attempt(_component, registry, data, section, kind, origins, label)
        if part is not None:
            parts[section] = part

    augment: list[Part] = []
    aug_table = data.get("augment", {})
    if not isinstance(aug_table, dict):
        problems.errors.append(RecipeError("[augment] must be a table of augmentation names, e.g. [augment.NAME]"))
        aug_table = {}
    for name, options in list(aug_table.items()):
        if options is False:
            del aug_table[name]
            continue
        if options is True:
            options = {}
            aug_table[name] = options
        part = problems.attempt(_augmentation, registry, name, options, data_part, origins, label)
        if part is not None:
            augment.append(part)

    optim_groups = problems.attempt(_algorithm_optim_groups, registry, data, default=[]) if algorithm else []
    optim_table = problems.attempt(_table, data, "optim", origins, label, default={})
    for group, options in optim_table.items():
        if algorithm is not None and group not in optim_groups:
            problems.errors.append(RecipeError(
                f"unknown optimiser group 'optim.{group}' in recipe {_origin_of(origins, f'optim.{group}') or label}"
                f"{did_you_mean(group, optim_groups)}; algorithm '{algorithm.name}' has: {', '.join(optim_groups) or 'none'}"
            ))
        elif not isinstance(options, dict):
            problems.errors.append(RecipeError(
                f"'optim.{group}' in recipe {_origin_of(origins, f'optim.{group}') or label} must be a table "
                f"of optimiser options ([optim.{group}]), got {options!r}"
            ))
    train = problems.attempt(
        lambda: build_dataclass(TrainConfig, _table(data, "train", origins, label), section="train", origin=origins.get))
    optim = {}
    for g in optim_groups:
        options = optim_table.get(g, {})
        if isinstance(options, dict):  # (with train's defaults if train itself is broken: report both)
            spec = problems.attempt(_optim_group, registry, g, dict(options), train or TrainConfig(), origins, label)
            if spec is not None:
                optim[g] = spec
    log = problems.attempt(
        lambda: build_dataclass(LogConfig, _table(data, "log", origins, label), section="log", origin=origins.get))
    evaluation = problems.attempt(
        lambda: _eval_config(registry, _table(data, "eval", origins, label), origins, label))
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.errors.append(RecipeError(f"'seed' in recipe {origins.get('seed') or label} must be an integer, got {seed!r}"))
    problems.raise_if_any(label)

    # The written recipe is complete: every default made explicit, so a run directory says it all.
    raw = {k: v for k, v in data.items() if k not in ("extends",)}
    raw["seed"] = seed
    raw["algorithm"] = {"name": algorithm.name, **config_to_dict(algorithm.config)}
    raw["data"] = {"name": data_part.name, **config_to_dict(data_part.config)}
    for section, part in parts.items():
        raw[section] = {"name": part.name, **config_to_dict(part.config)}
    raw["augment"] = {p.name: config_to_dict(p.config) for p in augment}
    raw["optim"] = {
        g: {"name": o.optimizer.name, **config_to_dict(o.optimizer.config),
            "schedule": {"name": o.schedule.name, **config_to_dict(o.schedule.config)}}
        for g, o in optim.items()
    }
    raw["train"] = config_to_dict(train)
    raw["log"] = config_to_dict(log)
    if "eval" in data:
        raw["eval"] = config_to_dict(evaluation)
    _drop_none(raw)
    return Recipe(
        name=str(data.get("name", label)), description=str(data.get("description", "")), seed=seed,
        algorithm=algorithm, data=data_part, parts=parts, augment=augment, optim=optim,
        train=train, log=log, raw=raw, source=label, eval=evaluation, classes_from_data=tuple(pending),
    )


def _eval_config(registry: Registry, table: dict, origins: dict[str, str], label: str) -> EvalConfig:
    config = build_dataclass(EvalConfig, table, section="eval", origin=origins.get)
    if config.every > 0:
        where = _origin_of(origins, "eval") or label
        _get(registry, "metric", config.metric, "eval.metric", _origin_of(origins, "eval.metric") or where)
        if config.extractor is not None:
            _get(registry, "feature_extractor", config.extractor, "eval.extractor",
                 _origin_of(origins, "eval.extractor") or where)
    return config


def _optim_group(registry: Registry, group: str, options: dict, train: TrainConfig, origins: dict[str, str],
                 label: str) -> OptimPart:
    """``[optim.GROUP]``: ``name`` (an optimiser, default adam), its options, and ``schedule``
    (a schedule name or a table with ``name`` and options)."""
    section = f"optim.{group}"
    name = options.pop("name", DEFAULT_OPTIMIZER)
    where = _origin_of(origins, f"{section}.name") or _origin_of(origins, section) or label
    if not isinstance(name, str):
        raise RecipeError(f"'{section}.name' in recipe {where} must be a string naming a registered optimizer, got {name!r}")
    comp = _get(registry, "optimizer", name, f"{section}.name", where)
    schedule = options.pop("schedule", None)
    if comp.config is None or "lr" not in field_types(comp.config):
        raise RecipeError(f"optimizer '{comp.name}' (plugin '{comp.plugin}') has no 'lr' option; ganforge needs one to schedule it")
    optimizer = Part("optimizer", comp.name, build_dataclass_for(comp, options, section, origins))
    if schedule is None:
        schedule = {"name": DEFAULT_SCHEDULE} if train.lr_decay_start >= 1.0 else {
            "name": DECAY_SCHEDULE, "start": train.lr_decay_start}
    elif isinstance(schedule, str):
        schedule = {"name": schedule}
    if not isinstance(schedule, dict) or not isinstance(schedule.get("name", DEFAULT_SCHEDULE), str):
        raise RecipeError(
            f"'{section}.schedule' in recipe {_origin_of(origins, f'{section}.schedule') or label} must be a schedule "
            f"name or a table ([{section}.schedule] name = \"...\"), got {schedule!r}"
        )
    schedule = dict(schedule)
    sname = schedule.pop("name", DEFAULT_SCHEDULE)
    swhere = _origin_of(origins, f"{section}.schedule") or label
    scomp = _get(registry, "schedule", sname, f"{section}.schedule.name", swhere)
    return OptimPart(optimizer, Part("schedule", scomp.name, build_dataclass_for(scomp, schedule, f"{section}.schedule", origins)))


def _augmentation(registry: Registry, name: str, options: Any, data_part: Part | None, origins: dict[str, str],
                  label: str) -> Part:
    if not isinstance(options, dict):
        raise RecipeError(f"augment.{name} must be a table of options, true, or false (to remove it), got {options!r}")
    where = _origin_of(origins, f"augment.{name}") or label
    comp = _get(registry, "augmentation", name, f"augment.{name}", where)
    spec = {"name": comp.name, **options}
    if data_part is not None:
        _inherit_image_size(registry, "augmentation", f"augment.{name}", spec, data_part, origins)
    options = {k: v for k, v in spec.items() if k != "name"}
    return Part("augmentation", comp.name, build_dataclass_for(comp, options, f"augment.{name}", origins))


def _drop_none(d: dict) -> None:
    # TOML has no null: an option left at None is simply absent (and means its default).
    for k in [k for k, v in d.items() if v is None]:
        del d[k]
    for v in d.values():
        if isinstance(v, dict):
            _drop_none(v)


def _algorithm_class(registry: Registry, data: dict):
    spec = data.get("algorithm")
    name = spec if isinstance(spec, str) else (spec or {}).get("name") if isinstance(spec, dict) else None
    if not name:
        raise RecipeError("recipe has no [algorithm] section naming a registered algorithm")
    return registry.get("algorithm", name)


def _algorithm_sections(registry: Registry, data: dict) -> dict[str, str]:
    """Recipe section -> component kind, as the algorithm class declares them."""
    return dict(getattr(_algorithm_class(registry, data).builder, "sections", {}))


def _algorithm_optim_groups(registry: Registry, data: dict) -> list[str]:
    return list(getattr(_algorithm_class(registry, data).builder, "optimizers", {}))


def _role_sections(data: dict, registry: Registry) -> set[str]:
    try:
        return set(_algorithm_sections(registry, data))
    except Exception:  # noqa: BLE001 - reported properly by resolve() itself
        return set()


def load_recipe(ref: str, registry: Registry, overrides: list[str] | None = None) -> Recipe:
    """Load a recipe by registered name or path, apply ``--set`` overrides and validate it."""
    if not isinstance(ref, str) or not ref.strip():
        raise RecipeError(f"a recipe is a registered name or a .toml path, got {ref!r}")
    data, origins = _resolve_chain(ref, registry, None, [])
    data.setdefault("name", ref if not _looks_like_path(ref) else Path(ref).stem)
    data = apply_overrides(data, origins, overrides or [])
    label = ref
    return resolve(data, registry, origins, label)


def recipe_from_toml(text: str, registry: Registry, label: str = "<checkpoint>") -> Recipe:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"malformed recipe TOML in {label}: {exc}") from None
    # A checkpoint's class counts are what its networks were built with: the data is not consulted.
    return resolve(data, registry, {}, label, list_classes=False)


def register_package_recipes(register, package: str, folder: str = "recipes") -> None:
    """Register every ``*.toml`` in a package's data folder under its file name (for plugin authors)::

        @hookimpl
        def register_recipes(register):
            register_package_recipes(register, __name__)
    """
    from importlib.resources import files

    root = files(package).joinpath(folder)
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        if path.name.endswith(".toml"):
            register(path.name[: -len(".toml")], path)
