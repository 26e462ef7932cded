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
from importlib import metadata as _metadata
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Iterable

import pluggy

from ganforge.core import hookspecs
from ganforge.core.errors import PluginError, did_you_mean
from ganforge.core.hookspecs import HOOKS, PROJECT
from ganforge.core.registry import Component, Registry

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

    @property
    def label(self) -> str:
        """``plugin 'acme' (distribution acme-gans)``: how messages name a plugin and where it comes from."""
        if self.distribution:
            return f"plugin '{self.name}' (distribution {self.distribution})"
        return f"plugin '{self.name}'" + (f" (module {self.module})" if self.module else "")

    def failure(self) -> str:
        """The failure as one sentence: which plugin, from where, that it is skipped, and why."""
        return f"{self.label} is skipped: {self.error}"

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
        """Load plugins from entry points (the installed ``ganforge`` group unless ``eps`` is given).

        ``eps`` may be any objects with ``name``, ``value``, ``load()`` and optionally ``dist``.
        """
        disabled = _disabled_names()
        eps = entry_points(group=PROJECT) if eps is None else eps
        for ep in sorted(eps, key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                distribution=_dist_name(dist),
                version=getattr(dist, "version", None) if dist is not None else None,
                module=getattr(ep, "value", None),
            )
            info.builtin = info.distribution == BUILTIN_DISTRIBUTION
            first = self.infos.get(ep.name)
            if first is not None:
                if (first.distribution, first.module) == (info.distribution, info.module):
                    continue  # the same entry point seen twice (e.g. a package on sys.path twice)
                # Two plugins claim one name: the first keeps it, the other is reported and skipped.
                info.name = _unique_name(f"{ep.name} ({info.distribution or info.module})", self.infos)
                self.infos[info.name] = info
                self._fail(
                    info,
                    f"uses the plugin name '{ep.name}', which plugin '{ep.name}' "
                    f"({first.distribution or first.module}) already has",
                    hint="uninstall one of them",
                )
                continue
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
        """Register a plugin object (a module or any object with hookimpls).

        ``name`` defaults to the module's ``__name__`` (or the object's class name); it must be unique.
        A module named by an installed ``ganforge`` entry point gets that entry point's distribution,
        so a built-in plugin module added here is built in, exactly as when it loads from its entry
        point (the name-clash rule is the same either way).
        A name listed in ``GANFORGE_DISABLE_PLUGINS`` is recorded as disabled and not registered.
        """
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if info is None:
            if name in self.infos or self.pm.has_plugin(name):
                raise PluginError(f"a plugin named '{name}' is already loaded", hint="register this one under another name")
            module = getattr(plugin, "__name__", None)
            dist = installed_distribution(module)
            info = PluginInfo(name=name, module=module, distribution=dist[0] if dist else None,
                              version=dist[1] if dist else None)
            # The same rule as for entry points: a plugin module of the ganforge distribution is built in.
            info.builtin = builtin or info.distribution == BUILTIN_DISTRIBUTION
            self.infos[name] = info
            if name in _disabled_names():
                info.disabled = True
                return
        self._registry = None
        if self.pm.is_registered(plugin):
            self._fail(info, f"is the same object as plugin '{self.pm.get_name(plugin)}', which is already loaded")
            return
        for hook in self._unknown_hooks(plugin):
            message = f"defines hook '{hook}', which ganforge does not have{did_you_mean(hook, HOOKS.values())}"
            info.warnings.append(message)
            if self.strict:
                raise PluginError(f"plugin '{name}' {message}")
            warnings.warn(f"ganforge plugin '{name}' {message}; it is ignored", RuntimeWarning, stacklevel=2)
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - e.g. pluggy validation of a hook's arguments
            self._fail(info, f"could not be registered: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", exc)

    def _unknown_hooks(self, plugin: Any) -> list[str]:
        names = []
        for attr in dir(plugin):
            try:
                opts = self.pm.parse_hookimpl_opts(plugin, attr)
            except Exception:  # noqa: BLE001 - odd attributes are pluggy's business, not ours
                continue
            if opts is None:
                continue
            hook = opts.get("specname") or attr
            if hook not in HOOKS.values():
                names.append(hook)
        return names

    def _fail(self, info: PluginInfo, message: str, exc: BaseException | None = None, hint: str | None = None) -> None:
        info.error = message.splitlines()[0] if message else repr(exc)
        info.traceback = "".join(traceback.format_exception(exc)) if exc is not None else None
        if self.strict:
            error = PluginError(f"{info.label}: {info.error}", hint=hint)
            if exc is not None:
                raise error from exc
            raise error

    def failures(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.error]

    # --- the registry -------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> Registry:
        """Call every plugin's hooks, one plugin at a time, and keep only plugins that succeed.

        Each plugin registers into a scratch registry first (which checks names, configs and
        duplicates within the plugin); a plugin failing half-way leaves nothing behind. Name clashes
        between plugins are then settled by a rule that load order never changes:

        - a built-in plugin (distribution ``ganforge``) keeps its names; a plugin that registers one
          of them again is skipped as a whole and reported, naming both plugins and distributions;
        - two non-built-in plugins that register the same name are both skipped and reported.

        A plugin is skipped whole, not name by name, so its own recipes can never silently run
        another plugin's component of the same name.
        """
        registry = Registry()
        for info in self.infos.values():
            info.provides = {}
        impls: dict[str, list] = {}
        for kind, hook_name in HOOKS.items():
            for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
                impls.setdefault(impl.plugin_name, []).append((kind, impl))
        order = list(self.infos) + [n for n in impls if n not in self.infos]
        scratches: dict[str, Registry] = {}
        for plugin_name in order:
            if plugin_name not in impls:
                continue
            info = self.infos.setdefault(plugin_name, PluginInfo(name=plugin_name))
            if info.error or info.disabled:
                continue
            scratch = Registry()
            for kind, impl in impls[plugin_name]:
                register = self._register_callback(scratch, kind, info)
                try:
                    impl.function(*[{"register": register}[arg] for arg in impl.argnames])
                except PluginError as exc:
                    self._fail(info, f"failed in {HOOKS[kind]}: {exc.message}", exc, exc.hint)
                    break
                except Exception as exc:  # noqa: BLE001
                    self._fail(info, f"failed in {HOOKS[kind]}: {type(exc).__name__}: {exc}", exc)
                    break
            if not info.error:
                scratches[plugin_name] = scratch
        for plugin_name, problems in self._clashes(scratches).items():
            first = problems[0] + (f" (and {len(problems) - 1} more clash(es))" if len(problems) > 1 else "")
            self._fail(
                self.infos[plugin_name], first,
                hint="rename the component in one plugin, uninstall one of them, or set "
                f"{DISABLE_ENV}={plugin_name}",
            )
            del scratches[plugin_name]
        for plugin_name, scratch in scratches.items():
            info = self.infos[plugin_name]
            for component in scratch.all():
                registry.add(component)
                info.provides.setdefault(component.kind, []).append(component.name)
        return registry

    def _describe(self, plugin: str) -> str:
        info = self.infos.get(plugin)
        return info.label if info is not None else f"plugin '{plugin}'"

    def _clashes(self, scratches: dict[str, Registry]) -> dict[str, list[str]]:
        """Plugin -> why it must be skipped, for every plugin that claims a name another one has."""
        claims: dict[tuple[str, str], list[str]] = {}
        for plugin_name, scratch in scratches.items():
            for comp in scratch.all():
                for key in (comp.name, *comp.aliases):
                    claims.setdefault((comp.kind, key), []).append(plugin_name)
        losers: dict[str, list[str]] = {}
        for (kind, key), plugins in sorted(claims.items()):
            if len(plugins) < 2:
                continue
            builtins = sorted(p for p in plugins if self.infos[p].builtin)
            keeper = builtins[0] if builtins else None
            for plugin in sorted(plugins):
                if plugin == keeper:
                    continue
                others = " and ".join(self._describe(o) for o in sorted(plugins) if o != plugin)
                if keeper is not None:
                    why = f"its {kind} '{key}' is also registered by the built-in {self._describe(keeper)}, which keeps the name"
                else:
                    why = f"its {kind} '{key}' is also registered by {others}, so no plugin keeps the name"
                losers.setdefault(plugin, []).append(why)
        return losers

    def _register_callback(self, registry: Registry, kind: str, info: PluginInfo):
        def register(name, builder=None, config=None, *, summary=None, aliases=()):
            if isinstance(aliases, str):
                aliases = (aliases,)
            if kind == "recipe":
                path = Path(builder) if isinstance(builder, (str, os.PathLike)) else builder
                if path is None or not hasattr(path, "read_text"):
                    raise PluginError(f"recipe '{name}': expected the path of a TOML file, got {builder!r}")
                component = Component(
                    kind=kind, name=name, builder=None, config=None, summary=summary or "",
                    plugin=info.name, distribution=info.distribution, aliases=tuple(aliases), path=path,
                )
            else:
                if not callable(builder):
                    raise PluginError(f"{kind} '{name}': builder must be callable, got {builder!r}")
                if summary is None:
                    doc = (getattr(builder, "__doc__", None) or "").strip()
                    summary = doc.splitlines()[0] if doc else ""
                component = Component(
                    kind=kind, name=name, builder=builder, config=config, summary=summary,
                    plugin=info.name, distribution=info.distribution, aliases=tuple(aliases),
                )
            registry.add(component)

        return register


def installed_distribution(module: str | None) -> tuple[str, str | None] | None:
    """(distribution, version) of the installed ``ganforge`` entry point whose target is ``module``."""
    if not module:
        return None
    return _entry_point_modules().get(module)


_EP_MODULES: dict[str, tuple[str, str | None]] | None = None


def _entry_point_modules() -> dict[str, tuple[str, str | None]]:
    global _EP_MODULES
    if _EP_MODULES is None:
        found: dict[str, tuple[str, str | None]] = {}
        try:
            for ep in _metadata.entry_points(group=PROJECT):  # the installed ones, whatever a test substitutes
                dist = getattr(ep, "dist", None)
                name = _dist_name(dist)
                if name:
                    found.setdefault(ep.value.partition(":")[0].strip(), (name, getattr(dist, "version", None)))
        except Exception:  # noqa: BLE001 - broken metadata only means no distribution is known
            pass
        _EP_MODULES = found
    return _EP_MODULES


def _dist_name(dist: Any) -> str | None:
    if dist is None:
        return None
    try:
        return dist.metadata["Name"]
    except Exception:  # noqa: BLE001 - broken metadata must not hide the plugin
        return getattr(dist, "name", None)


def _unique_name(name: str, taken: Any) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} #{n}", n + 1
    return candidate


_DEFAULT: PluginSet | None = None


def get_plugins() -> PluginSet:
    """The process-wide plugin set, loaded from entry points on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        plugins = PluginSet()
        plugins.load_entry_points()
        plugins.registry  # noqa: B018 - run the register hooks now, so their failures are reported too
        _DEFAULT = plugins
        for info in plugins.failures():
            warnings.warn(f"ganforge {info.failure()}", RuntimeWarning, stacklevel=2)
    return _DEFAULT


def get_registry() -> Registry:
    return get_plugins().registry


def set_plugins(plugins: PluginSet | None) -> None:
    """Replace the process-wide plugin set (tests use this for isolation)."""
    global _DEFAULT
    _DEFAULT = plugins

