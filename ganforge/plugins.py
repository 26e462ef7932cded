"""Finding plugins through the ``ganforge`` entry-point group and filling the registry.

Entry points load one at a time: a plugin that fails to import (or fails while registering) is
recorded with its name, distribution and error, reported once, and every other plugin keeps
working. ``GANFORGE_STRICT_PLUGINS=1`` makes such failures fatal (for plugin authors);
``GANFORGE_DISABLE_PLUGINS=a,b`` skips the named plugins.
"""

from __future__ import annotations

import os
import traceback
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import PluginError, did_you_mean
from .hookspecs import HOOKS, PROJECT
from .registry import Component, Registry

STRICT_ENV = "GANFORGE_STRICT_PLUGINS"
DISABLE_ENV = "GANFORGE_DISABLE_PLUGINS"
BUILTIN_DISTRIBUTION = "ganforge"


@dataclass
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    builtin: bool = False
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None  # one line
    traceback: str | None = None
    warnings: list[str] = field(default_factory=list)
    disabled: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "provides": self.provides,
            "error": self.error,
            "warnings": self.warnings,
            "disabled": self.disabled,
        }


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled_names() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


class PluginSet:
    """A pluggy manager plus what was learned while loading it, and the registry it fills."""

    def __init__(self, strict: bool | None = None):
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.strict = _truthy(os.environ.get(STRICT_ENV)) if strict is None else strict
        self._registry: Registry | None = None

    # --- loading ------------------------------------------------------------------------------
    def load_entry_points(self, eps: Iterable | None = None) -> None:
        disabled = _disabled_names()
        eps = entry_points(group=PROJECT) if eps is None else eps
        for ep in sorted(eps, key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
                module=ep.value,
            )
            info.builtin = info.distribution == BUILTIN_DISTRIBUTION
            self.infos[ep.name] = info
            if ep.name in disabled:
                info.disabled = True
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import error must not take the CLI down
                self._fail(info, f"could not be imported: {type(exc).__name__}: {exc}", exc)
                continue
            self.add(obj, name=ep.name, info=info)

    def add(self, plugin: Any, name: str | None = None, *, info: PluginInfo | None = None, builtin: bool = False) -> None:
        """Register a plugin object (a module or any object with hookimpls)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if info is None:
            info = PluginInfo(name=name, builtin=builtin, module=getattr(plugin, "__name__", None))
            self.infos[name] = info
        unknown = self._unknown_hooks(plugin)
        for hook in unknown:
            message = f"defines hook '{hook}', which ganforge does not have{did_you_mean(hook, HOOKS.values())}"
            info.warnings.append(message)
            if self.strict:
                raise PluginError(f"plugin '{name}' {message}")
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - e.g. pluggy validation of a hook's arguments
            self._fail(info, f"could not be registered: {exc}", exc)
        self._registry = None

    def _unknown_hooks(self, plugin: Any) -> list[str]:
        names = []
        for attr in dir(plugin):
            obj = getattr(plugin, attr, None)
            if callable(obj) and hasattr(obj, f"{PROJECT}_impl") and attr not in HOOKS.values():
                names.append(attr)
        return names

    def _fail(self, info: PluginInfo, message: str, exc: BaseException) -> None:
        info.error = message.splitlines()[0] if message else repr(exc)
        info.traceback = "".join(traceback.format_exception(exc))
        if self.strict:
            dist = f" (from {info.distribution})" if info.distribution else ""
            raise PluginError(f"plugin '{info.name}'{dist} {info.error}") from exc

    def failures(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.error]

    # --- the registry -------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> Registry:
        registry = Registry()
        for info in self.infos.values():
            info.provides = {}
        for kind, hook_name in HOOKS.items():
            caller = getattr(self.pm.hook, hook_name)
            # Call each plugin's implementation separately so we know who registers what.
            for impl in reversed(caller.get_hookimpls()):
                plugin_name = impl.plugin_name
                info = self.infos.setdefault(plugin_name, PluginInfo(name=plugin_name))
                if info.error:
                    continue
                register = self._register_callback(registry, kind, info)
                try:
                    impl.function(*[{"register": register}[arg] for arg in impl.argnames])
                except PluginError as exc:
                    self._fail(info, f"failed while registering {kind}s: {exc.message}", exc)
                except Exception as exc:  # noqa: BLE001
                    self._fail(info, f"failed while registering {kind}s: {type(exc).__name__}: {exc}", exc)
        # A plugin that failed half-way must not leave half its components behind.
        failed = {i.name for i in self.failures()}
        if failed:
            for table in registry.components.values():
                for name in [n for n, c in table.items() if c.plugin in failed]:
                    del table[name]
            for info in self.infos.values():
                if info.name in failed:
                    info.provides = {}
        return registry

    def _register_callback(self, registry: Registry, kind: str, info: PluginInfo):
        def register(name, builder=None, config=None, *, summary=None, aliases=()):
            if kind == "recipe":
                component = Component(
                    kind=kind, name=name, builder=None, config=None, summary=summary or "",
                    plugin=info.name, distribution=info.distribution, path=builder,
                )
            else:
                if not callable(builder):
                    raise PluginError(f"{kind} '{name}': builder must be callable, got {builder!r}")
                doc = (summary or (builder.__doc__ or "").strip().splitlines() or [""])
                component = Component(
                    kind=kind, name=name, builder=builder, config=config,
                    summary=summary or (doc[0] if isinstance(doc, list) else doc),
                    plugin=info.name, distribution=info.distribution, aliases=tuple(aliases),
                )
            registry.add(component)
            info.provides.setdefault(kind, []).append(name)

        return register


_DEFAULT: PluginSet | None = None


def get_plugins() -> PluginSet:
    """The process-wide plugin set, loaded from entry points on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        plugins = PluginSet()
        plugins.load_entry_points()
        _DEFAULT = plugins
        for info in plugins.failures():
            warnings.warn(f"ganforge plugin '{info.name}' {info.error}; it is skipped", RuntimeWarning, stacklevel=2)
    return _DEFAULT


def get_registry() -> Registry:
    return get_plugins().registry


def set_plugins(plugins: PluginSet | None) -> None:
    """Replace the process-wide plugin set (tests use this for isolation)."""
    global _DEFAULT
    _DEFAULT = plugins

