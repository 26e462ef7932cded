"""Test helpers for plugin authors (and ganforge's own tests).

Load plugins in isolation from whatever is installed on the machine, make that set the one the
CLI sees, and check that components honour the contracts in :mod:`ganforge.core.components`::

    from ganforge.testing import check_plugin, isolated_plugins
    import my_ganforge_plugin

    def test_contracts():
        check_plugin(isolated_plugins(my_ganforge_plugin, strict=True))

:func:`check_plugin` checks the components of the plugin under test only (by default: the set's
third-party plugins). What they build on (a loss, an optimiser, a dataset named by a recipe) comes
from the other plugins of the set and, when ganforge's built-in plugins are installed (they are part
of the ganforge distribution), from those; such components are used, never checked, and no recipe or
algorithm of another plugin is ever trained. Check single components with :func:`check_component`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

from ganforge.core import plugins as _plugins
from ganforge.core.components import Algorithm, Capabilities, check_loss
from ganforge.core.config import build_dataclass, config_to_dict, field_types
from ganforge.core.errors import DataError, GanforgeError, RecipeErrors, UnknownComponentError
from ganforge.data.items import dataset_fields, fetch_fields
from ganforge.core.hookspecs import KINDS
from ganforge.core.plugins import PluginSet, set_plugins
from ganforge.core.registry import Component, Registry

__all__ = [
    "FakeEntryPoint",
    "check_component",
    "check_plugin",
    "isolated_plugins",
    "train_smoke",
    "use_plugins",
    "with_builtins",
]

SKIPPED_NEEDS_DATA = "skipped: needs data"
SKIPPED_NEEDS_PLUGINS = "skipped: needs other plugins"
_TOLERANCE = 1e-4  # on the [-1, 1] image range


# --- isolation ---------------------------------------------------------------------------------
@dataclasses.dataclass
class FakeEntryPoint:
    """Stands in for an ``importlib.metadata.EntryPoint``: ``load()`` returns ``plugin`` or raises ``error``."""

    name: str
    plugin: Any = None
    error: BaseException | None = None
    value: str | None = None
    dist: Any = None

    def __post_init__(self):
        if self.value is None:
            self.value = getattr(self.plugin, "__name__", None) or f"fake_{self.name}"

    def load(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.plugin


def isolated_plugins(*plugins: Any, entry_points: Iterable | None = None, strict: bool | None = False) -> PluginSet:
    """A :class:`PluginSet` holding only ``plugins`` (and ``entry_points``), never the installed ones.

    Each plugin is a module or object with ``@hookimpl`` functions, or a ``(name, plugin)`` pair to
    choose its plugin name (default: the module's ``__name__``, or the class name). ``entry_points``
    are EntryPoint-like objects (see :class:`FakeEntryPoint`) loaded the way installed ones are.
    ``strict=True`` makes any plugin problem raise :class:`~ganforge.core.errors.PluginError`;
    ``strict=None`` takes it from ``GANFORGE_STRICT_PLUGINS``.
    """
    plugin_set = PluginSet(strict=strict)
    if entry_points is not None:
        plugin_set.load_entry_points(entry_points)
    for item in plugins:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, obj = item
        else:
            obj = item
            base = getattr(obj, "__name__", None) or type(obj).__name__
            name, n = base, 2
            while name in plugin_set.infos or plugin_set.pm.has_plugin(name):
                name, n = f"{base}-{n}", n + 1
        plugin_set.add(obj, name=name)
    return plugin_set


@contextlib.contextmanager
def use_plugins(plugin_set: PluginSet) -> Iterator[PluginSet]:
    """Make ``plugin_set`` the process-wide set (what ``get_plugins()`` and the CLI see), then restore."""
    previous = _plugins._DEFAULT
    set_plugins(plugin_set)
    try:
        yield plugin_set
    finally:
        set_plugins(previous)


# --- contract checks ---------------------------------------------------------------------------
def _as_registry(registry: Registry | PluginSet) -> Registry:
    return registry.registry if isinstance(registry, PluginSet) else registry


def _label(comp: Component) -> str:
    return f"{comp.kind} '{comp.name}' (plugin '{comp.plugin}')"


def _fail(label: str, message: str) -> AssertionError:
    return AssertionError(f"{label}: {message}")


def _default_config(comp: Component, label: str):
    try:
        config = comp.default_config()
    except Exception as exc:  # noqa: BLE001
        raise _fail(label, f"its config {comp.config.__name__} cannot be created with defaults: "
                           f"{type(exc).__name__}: {exc}") from exc
    if config is not None:
        # Recipes and checkpoints store configs as TOML/JSON and read them back: the defaults must survive that.
        try:
            stored = {k: v for k, v in config_to_dict(config).items() if v is not None}
            rebuilt = build_dataclass(comp.config, stored, section=comp.kind, what=label)
        except (TypeError, ValueError, GanforgeError) as exc:
            raise _fail(label, f"its default config does not survive being written to a recipe and read back: {exc}") from exc
        if config_to_dict(rebuilt) != config_to_dict(config):
            raise _fail(label, f"its default config reads back as {rebuilt!r}, not {config!r}")
    return config


def _build(comp: Component, label: str, config: Any) -> Any:
    built = comp.builder(config) if config is not None else comp.builder()
    if comp.kind == "loss":
        try:
            check_loss(built, "its loss")
        except GanforgeError as exc:
            raise _fail(label, exc.message) from None
    return built


def _images(size: int, batch: int = 2, *, grad: bool = False) -> Tensor:
    x = torch.rand(batch, 3, size, size) * 2 - 1
    return x.requires_grad_(grad)


def _check_images(label: str, out: Any, what: str, shape: tuple[int, ...] | None = None) -> None:
    if not isinstance(out, Tensor):
        raise _fail(label, f"{what} must be a tensor, got {type(out).__name__}")
    if shape is not None and tuple(out.shape) != shape:
        raise _fail(label, f"{what} has shape {list(out.shape)}, expected {list(shape)}")
    if out.dim() != 4 or out.shape[1] != 3:
        raise _fail(label, f"{what} has shape {list(out.shape)}, expected images [B, 3, H, W]")
    if not out.is_floating_point():
        raise _fail(label, f"{what} has dtype {out.dtype}, expected a floating-point tensor")
    if not torch.isfinite(out).all():
        raise _fail(label, f"{what} contains NaN or inf")
    low, high = float(out.min()), float(out.max())
    if low < -1 - _TOLERANCE or high > 1 + _TOLERANCE:
        raise _fail(label, f"{what} has values in [{low:.3g}, {high:.3g}], expected images in [-1, 1]")


def _module(label: str, obj: Any) -> nn.Module:
    if not isinstance(obj, nn.Module):
        raise _fail(label, f"the builder must return an nn.Module, got {type(obj).__name__}")
    return obj


def _check_generator(registry: Registry, comp: Component, label: str) -> str:
    config = _default_config(comp, label)
    net = _module(label, _build(comp, label, config))
    if hasattr(net, "noise_size"):
        noise = net.noise_size
        if isinstance(noise, bool) or not isinstance(noise, int) or noise < 1:
            raise _fail(label, f"noise_size must be a positive int, got {noise!r}")
        with torch.no_grad():
            out = _first_output(label, net, net(torch.randn(2, noise), *_labels(label, net)))
        _check_images(label, out, f"the output for noise [2, {noise}]")
        if out.shape[0] != 2:
            raise _fail(label, f"the output for noise [2, {noise}] has batch size {out.shape[0]}, expected 2")
        size = getattr(config, "image_size", None)
        if isinstance(size, int) and tuple(out.shape[-2:]) != (size, size):
            raise _fail(label, f"the output is {out.shape[-2]}x{out.shape[-1]} pixels, but its config says image_size={size}")
    else:
        x = _images(64)
        with torch.no_grad():
            out = _first_output(label, net, net(x))
        _check_images(label, out, "the output for images [2, 3, 64, 64] (an image-to-image generator; "
                                  "a noise-to-image one must have `noise_size`)", shape=tuple(x.shape))
    return "ok"


def _first_output(label: str, net: nn.Module, out: Any) -> Any:
    """The main output of a network: the first element of the tuple a ``multiple_outputs`` network
    returns (e.g. a discriminator's real/fake scores before its class logits), else ``out``."""
    if getattr(net, "multiple_outputs", False) and isinstance(out, (tuple, list)):
        if not out or not all(isinstance(o, Tensor) for o in out):
            kinds = ", ".join(type(o).__name__ for o in out) or "nothing"
            raise _fail(label, f"declares `multiple_outputs` but returned ({kinds}); every output must be a tensor")
        bad = [i for i, o in enumerate(out) if o.dim() < 1 or o.shape[0] != out[0].shape[0]]
        if bad:
            raise _fail(label, f"output {bad[0]} has shape {list(out[bad[0]].shape)}: every output must have the "
                               f"batch size first, like output 0 ({list(out[0].shape)})")
        return out[0]
    return out


def _labels(label: str, net: nn.Module) -> list[Tensor]:
    """``[labels]`` for a class-conditional network (one with ``num_classes``), else ``[]``."""
    classes = getattr(net, "num_classes", None)
    if classes is None:
        return []
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise _fail(label, f"num_classes must be a positive int, got {classes!r}")
    return [torch.arange(2) % classes]


def _check_discriminator(registry: Registry, comp: Component, label: str) -> str:
    config = _default_config(comp, label)
    net = _module(label, _build(comp, label, config))
    size = getattr(config, "image_size", None)
    size = size if isinstance(size, int) and not isinstance(size, bool) else 64
    channels = getattr(net, "in_channels", 3)
    x = (torch.rand(2, channels, size, size) * 2 - 1).requires_grad_(True)
    out = _first_output(label, net, net(x, *_labels(label, net)))
    if not isinstance(out, Tensor):
        raise _fail(label, f"the output must be a tensor, got {type(out).__name__} (a network that returns "
                           "several tensors declares `multiple_outputs = True`)")
    if out.dim() < 1 or out.shape[0] != 2:
        raise _fail(label, f"the output for images [2, 3, {size}, {size}] has shape {list(out.shape)}, expected [2, ...]")
    if not torch.isfinite(out).all():
        raise _fail(label, "the output contains NaN or inf")
    if not out.requires_grad:
        raise _fail(label, "the output does not depend differentiably on the input (the generator learns through it)")
    (grad,) = torch.autograd.grad(out.float().sum(), x, allow_unused=True)
    if grad is None:
        raise _fail(label, "no gradient reaches the input images (the generator learns through it)")
    return "ok"


def _check_scalar(label: str, value: Any, what: str, inputs: list[Tensor]) -> None:
    if not isinstance(value, Tensor) or value.dim() != 0:
        shape = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise _fail(label, f"{what} must return a scalar tensor, got {shape}")
    if not torch.isfinite(value):
        raise _fail(label, f"{what} returned {float(value)}")
    if not value.requires_grad:
        raise _fail(label, f"{what} has no gradient (it must be differentiable in its inputs)")
    grads = torch.autograd.grad(value, inputs, allow_unused=True)
    if all(g is None for g in grads):
        raise _fail(label, f"{what} has no gradient with respect to its inputs")


def _check_loss(registry: Registry, comp: Component, label: str) -> str:
    config = _default_config(comp, label)
    loss = _build(comp, label, config)
    for method in ("d_loss", "g_loss"):
        if not callable(getattr(loss, method, None)):
            raise _fail(label, f"has no {method}() (see ganforge.core.components.AdversarialLoss)")
    for shape in ((2,), (2, 1), (2, 1, 6, 6)):
        real = torch.randn(shape, requires_grad=True)
        fake = torch.randn(shape, requires_grad=True)
        _check_scalar(label, loss.d_loss(real, fake), f"d_loss on outputs of shape {list(shape)}", [real, fake])
        fake = torch.randn(shape, requires_grad=True)
        real_out = torch.randn(shape) if getattr(loss, "uses_real_in_g", False) else None
        _check_scalar(label, loss.g_loss(fake, real_out), f"g_loss on outputs of shape {list(shape)}", [fake])
    penalty = getattr(loss, "penalty", None)
    if callable(penalty):
        weight = torch.randn(3, requires_grad=True)

        def critic(x: Tensor) -> Tensor:
            return (x.mean(dim=(2, 3)) * weight).sum(dim=1)

        real, fake = _images(8), _images(8)
        value = penalty(critic, real, fake)
        if value is not None:
            _check_scalar(label, value, "penalty(critic, real, fake)", [weight])
    return "ok"


def _check_augmentation(registry: Registry, comp: Component, label: str) -> str:
    config = _default_config(comp, label)
    aug = _build(comp, label, config)
    if not callable(aug):
        raise _fail(label, f"the builder must return a callable augmentation, got {type(aug).__name__}")
    stage = getattr(aug, "stage", "step")
    if stage not in ("real", "step"):
        raise _fail(label, f"stage must be 'real' or 'step', got {stage!r}")
    x = _images(32, grad=stage == "step")
    before = x.detach().clone()
    out = aug(x)
    if not isinstance(out, Tensor):
        raise _fail(label, f"must return a tensor, got {type(out).__name__}")
    if out.shape != x.shape or out.dtype != x.dtype:
        raise _fail(label, f"changed images {x.dtype} {list(x.shape)} into {out.dtype} {list(out.shape)}; "
                           "an augmentation must keep shape and dtype")
    if not torch.equal(x.detach(), before):
        raise _fail(label, "modified its input in place")
    if not torch.isfinite(out).all():
        raise _fail(label, "returned NaN or inf")
    if stage == "step":
        if not out.requires_grad:
            raise _fail(label, "is a 'step' augmentation but its output has no gradient (it must be differentiable)")
        (grad,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
        if grad is None:
            raise _fail(label, "is a 'step' augmentation but no gradient reaches its input")
    return "ok"


def _check_dataset(registry: Registry, comp: Component, label: str) -> str:
    config = _default_config(comp, label)
    try:
        domains = _build(comp, label, config)
    except DataError:
        return SKIPPED_NEEDS_DATA
    if not isinstance(domains, Mapping) or not domains:
        raise _fail(label, f"the builder must return a non-empty {{domain: dataset}} mapping, got {type(domains).__name__}")
    for domain, dataset in domains.items():
        what = f"domain '{domain}'"
        try:
            n = len(dataset)
        except TypeError:
            raise _fail(label, f"{what} is not a sized dataset ({type(dataset).__name__})") from None
        if n < 1:
            raise _fail(label, f"{what} is empty")
        try:
            fields = dataset_fields(dataset)
        except GanforgeError as exc:
            raise _fail(label, f"{what}: {exc.message}") from None
        batch = fetch_fields(dataset, torch.arange(min(n, 2)))
        for name, kind in fields.items():
            if name not in batch:
                raise _fail(label, f"{what}: declares field '{name}' but its batches lack it")
            if kind == "image":
                _check_images(label, batch[name], f"{what}: field '{name}' of items 0-1")
            elif kind == "label":
                value = batch[name]
                if value.dtype != torch.long or value.dim() != 1:
                    raise _fail(label, f"{what}: field '{name}' must batch to int64 [B], got {value.dtype} {list(value.shape)}")
                classes = getattr(dataset, "class_names", None)
                if classes is not None and not bool(((value >= 0) & (value < len(classes))).all()):
                    raise _fail(label, f"{what}: labels outside [0, {len(classes)}) for its {len(classes)} class names")
    return "ok"


def _check_algorithm(registry: Registry, comp: Component, label: str) -> str:
    from ganforge.core.recipes import TOP_LEVEL

    cls = comp.builder
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise _fail(label, f"must be registered as a subclass of ganforge.core.components.Algorithm, got {cls!r}")
    sections, roles, optimizers = dict(cls.sections), dict(cls.roles), dict(cls.optimizers)
    network_kinds = [k for k in KINDS if k not in ("algorithm", "recipe", "metric", "feature_extractor")]
    for section, kind in sections.items():
        if kind not in network_kinds:
            raise _fail(label, f"section '{section}' has kind {kind!r}, expected one of {', '.join(network_kinds)}")
        if section in TOP_LEVEL:
            raise _fail(label, f"section '{section}' clashes with the recipe key '{section}'")
    for role, section in roles.items():
        if section not in sections:
            raise _fail(label, f"role '{role}' is built from section '{section}', which is not in sections "
                               f"({', '.join(sections) or 'none'})")
    for group, members in optimizers.items():
        if isinstance(members, str) or not isinstance(members, (tuple, list)):
            raise _fail(label, f"optimizer group '{group}' must list roles as a tuple, got {members!r}")
        for role in members:
            if role not in roles:
                raise _fail(label, f"optimizer group '{group}' updates role '{role}', which is not in roles "
                                   f"({', '.join(roles) or 'none'})")
    domains = cls.domains
    if isinstance(domains, str) or not domains or not all(isinstance(d, str) for d in domains):
        raise _fail(label, f"domains must be a non-empty tuple of names, got {domains!r}")
    for derived, base in dict(getattr(cls, "derived", {})).items():
        if base not in roles:
            raise _fail(label, f"derived network '{derived}' follows role '{base}', which is not in roles")
    for domain, needed in dict(getattr(cls, "fields", {})).items():
        if domain not in domains or isinstance(needed, str):
            raise _fail(label, f"fields must map its domains to tuples of field names, got {domain!r}: {needed!r}")
    config = _default_config(comp, label)
    algorithm = _build(comp, label, config)
    if not isinstance(algorithm, cls):
        raise _fail(label, f"building it returned {type(algorithm).__name__}, not an instance of {cls.__name__}")
    caps = algorithm.capabilities(None)
    if not isinstance(caps, Capabilities):
        raise _fail(label, f"capabilities() must return ganforge.core.components.Capabilities, got {type(caps).__name__}")
    return train_smoke(registry, comp.name)


def _check_optimizer(registry: Registry, comp: Component, label: str) -> str:
    config = _default_config(comp, label)
    if config is None or not hasattr(config, "lr"):
        raise _fail(label, "its config must have an 'lr' option (the group's base rate)")
    factory = _build(comp, label, config)
    weight = nn.Parameter(torch.ones(3))
    optimizer = factory([weight])
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise _fail(label, f"the builder must return params -> torch.optim.Optimizer, got {type(optimizer).__name__}")
    weight.sum().backward()
    optimizer.step()
    if torch.equal(weight.detach(), torch.ones(3)):
        raise _fail(label, "one step with a non-zero gradient left the parameter unchanged")
    return "ok"


def _check_schedule(registry: Registry, comp: Component, label: str) -> str:
    schedule = _build(comp, label, _default_config(comp, label))
    if not callable(getattr(schedule, "factor", None)):
        raise _fail(label, "must have factor(step, total) (see ganforge.core.components.Schedule)")
    values = [schedule.factor(step, 100) for step in range(100)]
    if not all(isinstance(v, (int, float)) and 0.0 <= v < float("inf") for v in values):
        raise _fail(label, f"factor(step, total) must be a finite number >= 0, got e.g. {values[:3]}")
    if values != [schedule.factor(step, 100) for step in range(100)]:
        raise _fail(label, "factor(step, total) must be a pure function of the step (resume depends on it)")
    return "ok"


# --- two training steps of an algorithm, on data of the right shape ------------------------------
SYNTHETIC_DATASET = "ganforge-testing-synthetic"
SMOKE_IMAGE_SIZE = 32  # the synthetic images' size when nothing else decides it


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    domains: tuple[str, ...] = ("images",)
    image_size: int = SMOKE_IMAGE_SIZE
    classes: int = 0  # > 0: items carry a 'label' field
    paired: tuple[str, ...] = ()  # extra image fields (e.g. a paired 'target')
    size: int = 8

    def list_classes(self) -> tuple[str, ...]:
        """The class names (networks with ``num_classes`` inherit their number)."""
        return tuple(f"class{i}" for i in range(self.classes))


def build_synthetic(config: SyntheticConfig):
    """Random images (and labels / paired images) of the requested shape: no files needed."""
    from ganforge.data.folders import ImageTensorDataset

    g = torch.Generator().manual_seed(0)
    shape = (config.size, 3, config.image_size, config.image_size)
    out = {}
    for domain in config.domains:
        labels = torch.arange(config.size) % config.classes if config.classes else None
        out[domain] = ImageTensorDataset(
            torch.randint(0, 256, shape, dtype=torch.uint8, generator=g), labels=labels,
            class_names=list(config.list_classes()) if config.classes else None,
            paired={k: torch.randint(0, 256, shape, dtype=torch.uint8, generator=g) for k in config.paired},
        )
    return out


class _Skip(Exception):
    """The algorithm cannot be composed into a run from the registered components."""


@dataclasses.dataclass
class _Shape:
    """What an algorithm's data looks like: from its declared domains and fields."""

    domains: tuple[str, ...]
    labelled: bool  # a field 'label': class-conditional networks
    paired: tuple[str, ...]  # further image fields of an item (a paired 'target')

    @classmethod
    def of(cls, algorithm: type) -> "_Shape":
        needed = {f for fs in dict(getattr(algorithm, "fields", {})).values() for f in fs}
        return cls(tuple(algorithm.domains), "label" in needed, tuple(sorted(needed - {"label"})))

    @property
    def noise_to_image(self) -> bool:
        """One domain of plain images: the generator draws from noise (else it translates images)."""
        return len(self.domains) == 1 and not self.paired

    @property
    def discriminator_channels(self) -> int:
        """A paired discriminator sees an item's images side by side, concatenated."""
        return 3 * (1 + len(self.paired))


def _preference(plugin: str) -> Callable[[Component], int]:
    """Sort key: the algorithm's own plugin first, then built-in plugins, then any other."""

    def rank(comp: Component) -> int:
        if comp.plugin == plugin:
            return 0
        return 1 if comp.distribution == _plugins.BUILTIN_DISTRIBUTION else 2

    return rank


def _candidates(registry: Registry, kind: str, plugin: str) -> list[Component]:
    # Registration order within each rank: a plugin's first component of a kind is its main one.
    return sorted(registry.components[kind].values(), key=_preference(plugin))


def _probe(comp: Component, **inherited: Any) -> Any:
    """Build ``comp`` from its defaults plus the options it would inherit (those its config has);
    None when that fails."""
    options = {}
    if comp.config is not None:
        types_ = field_types(comp.config)
        options = {k: v for k, v in inherited.items() if k in types_ and v is not None}
    try:
        config = build_dataclass(comp.config, options, section=comp.kind) if comp.config is not None else None
        with torch.random.fork_rng(devices=[]):
            return _build(comp, comp.kind, config)
    except Exception:  # noqa: BLE001 - an unsuitable candidate, not a failure of the check
        return None


def _generator_size(net: nn.Module, shape: _Shape) -> int | None:
    """The size of the square images a noise-to-image generator draws (from one forward)."""
    try:
        labels = [torch.arange(2) % int(net.num_classes)] if shape.labelled else []
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = net(torch.randn(2, int(net.noise_size)), *labels)
        if getattr(net, "multiple_outputs", False) and isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, Tensor) and out.dim() == 4 and out.shape[-1] == out.shape[-2]:
            return int(out.shape[-1])
    except Exception:  # noqa: BLE001 - training will report it, naming the generator
        pass
    return None


def _pick_generator(registry: Registry, shape: _Shape, plugin: str) -> tuple[Component, int]:
    """A generator of the right type (noise-to-image or image-to-image, class-conditional for labelled
    data) and the image size to train it at."""
    classes = 2 if shape.labelled else None
    for comp in _candidates(registry, "generator", plugin):
        try:
            default = getattr(comp.default_config(), "image_size", None)
        except Exception:  # noqa: BLE001 - its own check reports a config without working defaults
            continue
        for size in dict.fromkeys([SMOKE_IMAGE_SIZE, default]):
            net = _probe(comp, image_size=size, num_classes=classes)
            if not isinstance(net, nn.Module):
                continue
            if hasattr(net, "noise_size") != shape.noise_to_image or hasattr(net, "num_classes") != shape.labelled:
                break  # the wrong type of generator at any size
            has_size = comp.config is not None and "image_size" in field_types(comp.config)
            if not has_size and shape.noise_to_image:
                size = _generator_size(net, shape) or SMOKE_IMAGE_SIZE
            return comp, int(size or SMOKE_IMAGE_SIZE)
    kind = ("class-conditional " if shape.labelled else "") + ("noise-to-image" if shape.noise_to_image else "image-to-image")
    raise _Skip(f"no registered {kind} generator builds from its defaults")


def _pick_discriminator(registry: Registry, shape: _Shape, plugin: str, size: int) -> Component:
    """A discriminator taking the algorithm's images (3 channels, or an item's images side by side);
    among those of one plugin, a class-conditional one for labelled data (an auxiliary-classifier
    discriminator is not class-conditional, so the algorithm's own plugin may provide either)."""
    classes = 2 if shape.labelled else None
    fits: dict[int, list[tuple[bool, Component]]] = {}
    rank = _preference(plugin)
    for comp in _candidates(registry, "discriminator", plugin):
        net = _probe(comp, image_size=size, num_classes=classes)
        if isinstance(net, nn.Module) and getattr(net, "in_channels", 3) == shape.discriminator_channels:
            fits.setdefault(rank(comp), []).append((hasattr(net, "num_classes") == shape.labelled, comp))
    for group in sorted(fits):
        return max(fits[group], key=lambda fit: fit[0])[1]  # max keeps the first of equals
    raise _Skip(f"no registered discriminator of {shape.discriminator_channels} input channels builds from its defaults")


def _pick_any(registry: Registry, kind: str, plugin: str) -> Component:
    for comp in _candidates(registry, kind, plugin):
        if _probe(comp) is not None:
            return comp
    raise _Skip(f"no registered {kind} builds from its defaults")


def _compose(registry: Registry, comp: Component, shape: _Shape) -> tuple[dict, int, str]:
    """A recipe for ``comp`` from registered components: (raw recipe, image size, what it is made of)."""
    cls = comp.builder
    raw: dict[str, Any] = {"name": f"{comp.name}-smoke", "algorithm": {"name": comp.name}}
    roles = dict(cls.roles)
    sections = dict(cls.sections)
    size = SMOKE_IMAGE_SIZE
    # Generators first: they decide the image size the discriminators must take.
    order = sorted(sections, key=lambda s: (sections[s] != "generator", sections[s] != "discriminator"))
    for section in order:
        kind = sections[section]
        if kind == "generator" and section in roles.values():
            chosen, size = _pick_generator(registry, shape, comp.plugin)
        elif kind == "discriminator" and section in roles.values():
            chosen = _pick_discriminator(registry, shape, comp.plugin, size)
        else:
            chosen = _pick_any(registry, kind, comp.plugin)
        raw[section] = {"name": chosen.name}
    groups: dict[str, dict] = {}
    from ganforge.core.recipes import DEFAULT_OPTIMIZER, DEFAULT_SCHEDULE

    for group in dict(cls.optimizers):
        spec: dict[str, Any] = {}
        if not registry.has("optimizer", DEFAULT_OPTIMIZER):
            spec["name"] = _pick_any(registry, "optimizer", comp.plugin).name
        if not registry.has("schedule", DEFAULT_SCHEDULE):
            spec["schedule"] = {"name": _pick_any(registry, "schedule", comp.plugin).name}
        groups[group] = spec
    raw["optim"] = groups
    parts = ", ".join(f"{sections[s]} '{raw[s]['name']}'" for s in sections)
    return raw, size, f"composed with {parts}" if parts else "composed"


def _own_recipe(registry: Registry, comp: Component):
    """The first recipe of the algorithm's own plugin that trains it and loads, or None."""
    from ganforge.core.recipes import load_recipe

    for name in registry.list("recipe"):
        if registry.get("recipe", name).plugin != comp.plugin:
            continue
        try:
            candidate = load_recipe(name, registry)
        except GanforgeError:
            continue  # its own check reports why
        if candidate.algorithm.name == comp.name:
            return candidate
    return None


def train_smoke(registry: Registry, algorithm: str, steps: int = 2) -> str:
    """Train ``algorithm`` for ``steps`` steps on synthetic data of the shape it declares (its
    ``domains`` and ``fields``: images, class labels, paired images), then load the checkpoint and
    exercise every declared inference capability.

    The run takes its components and options from a recipe of the algorithm's own plugin that
    trains it, when one loads (with the data replaced); otherwise it is composed from registered
    components that suit the algorithm — the algorithm's own plugin's first, then built-in ones:
    a noise-to-image or image-to-image generator as its data implies, class-conditional networks
    for labelled data, a discriminator taking an item's images side by side for paired data.
    Networks with ``num_classes`` get the synthetic data's class count. Returns ``"ok"``, or
    ``"skipped: needs other plugins (...)"`` when no registered component fits a section. Raises
    AssertionError naming the algorithm, and what it was composed with, on failure."""
    import io
    import tempfile
    from pathlib import Path

    from rich.console import Console

    from ganforge.core.components import SampleRequest
    from ganforge.core.recipes import resolve
    from ganforge.io.inference import load_for_inference
    from ganforge.train.loop import train

    comp = registry.get("algorithm", algorithm)
    cls = comp.builder
    shape = _Shape.of(cls)
    recipe = _own_recipe(registry, comp)
    if recipe is not None:
        raw = copy.deepcopy(recipe.raw)
        raw.pop("eval", None)
        for section in raw.values():
            if isinstance(section, dict) and "name" in section:
                section.pop("num_classes", None)  # follow the synthetic data's classes
        size = int(getattr(recipe.data.config, "image_size", 0) or SMOKE_IMAGE_SIZE)
        how = f"trained by its recipe '{recipe.name}'"
    else:
        try:
            raw, size, how = _compose(registry, comp, shape)
        except _Skip as exc:
            return f"{SKIPPED_NEEDS_PLUGINS} ({exc})"
    data = {
        "name": SYNTHETIC_DATASET, "domains": list(shape.domains), "image_size": size,
        "classes": 2 if shape.labelled else 0, "paired": list(shape.paired),
    }
    scratch = Registry()
    for existing in registry.all():
        scratch.add(existing)
    scratch.add(Component("dataset", SYNTHETIC_DATASET, build_synthetic, SyntheticConfig, "synthetic test data", "ganforge.testing"))
    raw["data"] = data
    raw["train"] = {**raw.get("train", {}), "steps": steps, "batch_size": 2, "mixed_precision": "no", "threads": 0}
    raw["log"] = {**raw.get("log", {}), "every": 1, "sample_every": steps, "checkpoint_every": steps,
                  "num_samples": 4, "gif": False, "plots": False}
    label = f"algorithm '{algorithm}' (plugin '{comp.plugin}'; {how}, on synthetic data)"
    try:
        resolved = resolve(raw, scratch, {}, f"{raw.get('name', algorithm)} on synthetic data")
        with tempfile.TemporaryDirectory(prefix="ganforge-smoke-") as tmp:
            quiet = Console(file=io.StringIO())  # what it prints is no news to the plugin author
            run_dir = train(resolved, scratch, Path(tmp) / "run", progress=False, console=quiet)
            loaded = load_for_inference(run_dir, scratch)
            caps = loaded.capabilities
            if caps.sample or caps.sample_inputs:
                inputs = None
                if caps.sample_inputs:
                    images = torch.rand(2, 3, size, size) * 2 - 1
                    inputs = {d: images for d in shape.domains}
                grid, nrow = loaded.algorithm.sample(loaded.nets, SampleRequest(num=2, seed=0, inputs=inputs))
                _check_images(label, grid, "sample()")
            if caps.classes:
                grid, _ = loaded.algorithm.sample(loaded.nets, SampleRequest(num=2, seed=0, class_index=1))
                _check_images(label, grid, "sample() of class 1")
            for direction in caps.directions:
                x = torch.rand(1, 3, size, size) * 2 - 1
                with torch.no_grad():
                    y = loaded.algorithm.translator(loaded.nets, direction)(x)
                _check_images(label, y, f"translator('{direction}')")
    except GanforgeError as exc:
        raise _fail(label, f"{steps} training steps failed: {exc}") from exc
    return "ok"


def _check_recipe(registry: Registry, comp: Component, label: str) -> str:
    from ganforge.core.recipes import UnknownRecipeError, load_recipe

    try:
        load_recipe(comp.name, registry)
    except (UnknownComponentError, UnknownRecipeError) as exc:
        # It builds on a plugin that is not in this set: check it next to that plugin.
        return f"{SKIPPED_NEEDS_PLUGINS} ({exc.message})"
    except RecipeErrors as exc:
        if all(isinstance(p, (UnknownComponentError, UnknownRecipeError)) for p in exc.problems):
            return f"{SKIPPED_NEEDS_PLUGINS} ({exc.problems[0].message})"
        raise _fail(label, f"does not load: {exc}") from exc
    except GanforgeError as exc:
        raise _fail(label, f"does not load: {exc}") from exc
    return "ok"


def _check_protocol(registry: Registry, comp: Component, label: str) -> str:
    """A protocol builds into a Protocol whose dataset, metrics and network are registered (or it
    waits for the plugins that provide them)."""
    from ganforge.eval.protocols import Protocol

    protocol = comp.build()
    if not isinstance(protocol, Protocol):
        raise _fail(label, f"built a {type(protocol).__name__}, not a ganforge.eval.protocols.Protocol")
    if protocol.num < 2:
        raise _fail(label, f"generates {protocol.num} image(s); a score needs at least 2")
    needs = [("dataset", protocol.dataset), *[("metric", m) for m in protocol.metrics],
             ("feature_extractor", protocol.extractor)]
    missing = [f"{kind} '{name}'" for kind, name in needs if not registry.has(kind, name)]
    if missing:
        return f"{SKIPPED_NEEDS_PLUGINS} ({', '.join(missing)} not registered here)"
    return "ok"


def _check_metric(registry: Registry, comp: Component, label: str) -> str:
    import math

    from ganforge.eval.interfaces import Metric

    metric = _build(comp, label, _default_config(comp, label))
    if not isinstance(metric, Metric):
        raise _fail(label, f"the builder must return a ganforge.eval.interfaces.Metric, got {type(metric).__name__}")
    if metric.inputs not in ("features", "pairs"):
        raise _fail(label, f"inputs must be 'features' or 'pairs', got {metric.inputs!r}")
    g = torch.Generator().manual_seed(0)
    if metric.inputs == "features":
        real, fake = torch.randn(24, 8, generator=g), torch.randn(30, 8, generator=g) + 0.5
    else:
        real = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
        fake = (real + 0.1 * torch.randn(4, 3, 32, 32, generator=g)).clamp(-1, 1)
    scores = metric.compute(real, fake)
    if not isinstance(scores, Mapping) or not scores:
        raise _fail(label, f"compute() must return a non-empty {{name: number}} mapping, got {scores!r}")
    bad = [k for k, v in scores.items() if not isinstance(v, (int, float)) or not math.isfinite(float(v))]
    if bad:
        raise _fail(label, f"compute() returned non-finite or non-numeric scores: {', '.join(map(str, bad))}")
    if metric.primary not in scores:
        raise _fail(label, f"its primary score {metric.primary!r} is not among the scores it returns ({', '.join(scores)})")
    return "ok"


def _check_feature_extractor(registry: Registry, comp: Component, label: str) -> str:
    from ganforge.eval.interfaces import FeatureExtractor, MetricsError

    extractor = _build(comp, label, _default_config(comp, label))
    if not isinstance(extractor, FeatureExtractor):
        raise _fail(label, f"the builder must return a ganforge.eval.interfaces.FeatureExtractor, got {type(extractor).__name__}")
    try:
        extractor.load()
    except MetricsError as exc:  # e.g. weights that are installed separately
        return f"{SKIPPED_NEEDS_DATA} ({exc.message})"
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        feats = extractor(images)
    if not isinstance(feats, Tensor) or feats.dim() != 2 or feats.shape[0] != 2:
        shape = list(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
        raise _fail(label, f"features must be [B, D], got {shape} for 2 images")
    if not torch.isfinite(feats).all():
        raise _fail(label, "features are not finite")
    if not isinstance(extractor.fingerprint(), str) or not extractor.fingerprint():
        raise _fail(label, "fingerprint() must return a non-empty string")
    return "ok"


_CHECKS: dict[str, Callable[[Registry, Component, str], str]] = {
    "generator": _check_generator,
    "discriminator": _check_discriminator,
    "loss": _check_loss,
    "augmentation": _check_augmentation,
    "dataset": _check_dataset,
    "algorithm": _check_algorithm,
    "optimizer": _check_optimizer,
    "schedule": _check_schedule,
    "metric": _check_metric,
    "feature_extractor": _check_feature_extractor,
    "protocol": _check_protocol,
    "recipe": _check_recipe,
}


def check_component(registry: Registry | PluginSet, kind: str, name: str) -> str:
    """Build ``kind`` ``name`` from its default config and check it honours its contract.

    Returns ``"ok"``, ``"skipped: needs data"`` for a dataset whose defaults need files, or
    ``"skipped: needs other plugins (...)"`` for a recipe naming a component or recipe that is not
    registered, or an algorithm that no registered components can be composed with (it builds on
    another plugin: put that plugin in ``registry``; :func:`check_plugin` adds the built-in ones).
    Raises :class:`AssertionError` naming the component when a check fails. Runs on the CPU and
    leaves torch's random state as it was.
    """
    registry = _as_registry(registry)
    if kind not in _CHECKS:
        raise AssertionError(f"unknown component kind '{kind}' (kinds: {', '.join(_CHECKS)})")
    if not registry.has(kind, name):
        raise AssertionError(f"{kind} '{name}' is not registered (registered: {', '.join(registry.list(kind)) or 'none'})")
    comp = registry.get(kind, name)
    label = _label(comp)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            return _CHECKS[kind](registry, comp, label)
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - any crash is a broken contract, reported with its name
            raise _fail(label, f"{type(exc).__name__}: {exc}") from exc


def builtin_plugins() -> PluginSet | None:
    """The built-in plugins of the installed ganforge distribution, loaded apart from any other set;
    None when none are installed (e.g. ganforge imported from a source tree that was never installed)."""
    from importlib import metadata

    eps = [ep for ep in metadata.entry_points(group=_plugins.PROJECT)
           if _plugins._dist_name(getattr(ep, "dist", None)) == _plugins.BUILTIN_DISTRIBUTION]
    if not eps:
        return None
    plugin_set = PluginSet(strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plugin_set.load_entry_points(eps)
        plugin_set.registry  # noqa: B018 - run the hooks now, quietly
    return plugin_set


def with_builtins(registry: Registry) -> Registry:
    """``registry`` plus every component of the installed built-in plugins whose name (or alias) it
    lacks: what a plugin builds on when it is installed next to ganforge."""
    builtins = builtin_plugins()
    if builtins is None:
        return registry
    merged = Registry()
    for comp in registry.all():
        merged.add(comp)
    for comp in builtins.registry.all():
        if not any(merged.has(comp.kind, key) for key in (comp.name, *comp.aliases)):
            merged.add(comp)
    return merged


def _checked_plugins(plugin_set: PluginSet, plugins: Iterable[Any] | None) -> set[str]:
    if plugins is None:
        third_party = {name for name, info in plugin_set.infos.items() if not info.builtin}
        return third_party or set(plugin_set.infos)
    names = set()
    for item in [plugins] if isinstance(plugins, str) else plugins:
        name = item if isinstance(item, str) else plugin_set.pm.get_name(item)
        if name is None or name not in plugin_set.infos:
            known = ", ".join(sorted(plugin_set.infos)) or "none"
            raise AssertionError(f"{item!r} is not a plugin of this set (its plugins: {known})")
        names.add(name)
    return names


def check_plugin(plugin_set: PluginSet, plugins: Iterable[Any] | str | None = None) -> dict[str, str]:
    """Check every component of the plugin(s) under test, and fail on any plugin load failure or
    warning in the set.

    The plugins under test are ``plugins`` (plugin names, or the objects given to
    :func:`isolated_plugins`); by default every third-party plugin of the set, or every plugin when
    the set holds only built-in ones. Each of their components builds from its default config and
    honours its contract (see :func:`check_component`); each algorithm trains two steps on synthetic
    data of the shape it declares (:func:`train_smoke`); each recipe loads. What they build on comes
    from the rest of the set and from the installed built-in plugins (:func:`with_builtins`): those
    components are used, never checked, and their recipes and algorithms are never trained.

    Returns ``{"kind:name": result}`` for the checked components; raises one
    :class:`AssertionError` listing every problem.
    """
    problems: list[str] = []
    try:
        registry = plugin_set.registry
    except GanforgeError as exc:  # strict sets raise on the first problem
        raise AssertionError(str(exc)) from exc
    for info in plugin_set.infos.values():
        if info.error:
            problems.append(info.failure())
        problems.extend(f"{info.label} {warning}" for warning in info.warnings)
    checked = _checked_plugins(plugin_set, plugins)
    support = with_builtins(registry)
    results: dict[str, str] = {}
    for comp in registry.all():
        if comp.plugin not in checked:
            continue
        key = f"{comp.kind}:{comp.name}"
        try:
            results[key] = check_component(support, comp.kind, comp.name)
        except AssertionError as exc:
            results[key] = "failed"
            problems.append(str(exc))
    if problems:
        raise AssertionError(f"{len(problems)} problem(s):\n" + "\n".join(f"- {p}" for p in problems))
    return results
