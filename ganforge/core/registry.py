"""The registry: per kind, name -> (builder, config dataclass, summary, providing plugin)."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from ganforge.core.errors import GanforgeError, PluginCodeError, PluginError, UnknownComponentError, did_you_mean, first_line
from ganforge.core.hookspecs import KINDS


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    builder: Callable[..., Any] | None  # None for recipes (they are data, not code)
    config: type | None  # a dataclass type, or None when the component takes no options
    summary: str
    plugin: str  # entry-point name of the plugin that registered it
    distribution: str | None = None
    aliases: tuple[str, ...] = ()
    path: Any = None  # recipes: the TOML file (a Path or importlib Traversable)

    def default_config(self):
        return self.config() if self.config is not None else None

    @property
    def label(self) -> str:
        """``generator 'dcgan' (plugin 'dcgan' from ganforge)``: how errors name a component."""
        dist = f" from {self.distribution}" if self.distribution and self.distribution != self.plugin else ""
        return f"{self.kind} '{self.name}' (plugin '{self.plugin}'{dist})"

    def build(self, config: Any = None) -> Any:
        """Call the builder (with ``config`` when the component has options). An exception from the
        plugin's code becomes a :class:`PluginCodeError` naming the component."""
        if self.builder is None:
            raise UnknownComponentError(f"{self.kind} '{self.name}' is data, not something to build")
        with plugin_code(self, "while building"):
            return self.builder(config) if self.config is not None else self.builder()


@contextmanager
def plugin_code(component: Component, action: str, hint: str | None = None):
    """Run plugin code; any exception but a GanforgeError becomes one line naming the component."""
    try:
        yield
    except GanforgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - plugin code can raise anything
        raise PluginCodeError(
            f"{component.label} failed {action}: {first_line(exc)}",
            hint=hint or "a bug in that plugin, or an option it does not check; run with --debug for the traceback",
        ) from exc


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


@dataclass
class Registry:
    components: dict[str, dict[str, Component]] = field(default_factory=lambda: {k: {} for k in KINDS})
    aliases: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})

    # --- registration -----------------------------------------------------------------------
    def add(self, component: Component) -> None:
        kind, name = component.kind, component.name
        if kind not in self.components:
            raise PluginError(f"unknown component kind '{kind}'{did_you_mean(str(kind), KINDS)}")
        if not name or not isinstance(name, str):
            raise PluginError(f"plugin '{component.plugin}' registered a {kind} with an invalid name {name!r}")
        bad_alias = [a for a in component.aliases if not a or not isinstance(a, str) or a == name]
        if bad_alias:
            raise PluginError(f"plugin '{component.plugin}' registered {kind} '{name}' with an invalid alias {bad_alias[0]!r}")
        if component.config is not None and not (
            isinstance(component.config, type) and dataclasses.is_dataclass(component.config)
        ):
            raise PluginError(
                f"plugin '{component.plugin}' registered {kind} '{name}' with a config that is not a dataclass "
                f"({component.config!r})",
                hint="pass a @dataclass type whose fields are the options a recipe may set",
            )
        keys = (name, *component.aliases)
        if len(set(keys)) != len(keys):
            raise PluginError(f"plugin '{component.plugin}' registered {kind} '{name}' with a repeated alias")
        for key in keys:
            existing = self._lookup(kind, key)
            if existing is not None:
                if existing.plugin == component.plugin:
                    raise PluginError(f"plugin '{component.plugin}' registers {kind} '{key}' twice")
                raise PluginError(
                    f"{kind} '{key}' is registered twice: by plugin '{existing.plugin}' and by plugin "
                    f"'{component.plugin}'",
                    hint="rename one of them, or disable one plugin with GANFORGE_DISABLE_PLUGINS",
                )
        self.components[kind][name] = component
        for alias in component.aliases:
            self.aliases[kind][alias] = name

    def remove_plugin(self, plugin: str) -> list[Component]:
        """Remove every component (and alias) a plugin registered; returns what was removed."""
        removed = []
        for kind, table in self.components.items():
            for name in [n for n, c in table.items() if c.plugin == plugin]:
                removed.append(table.pop(name))
            aliases = self.aliases[kind]
            for alias in [a for a, target in aliases.items() if target not in table]:
                del aliases[alias]
        return removed

    def _lookup(self, kind: str, name: str) -> Component | None:
        if not isinstance(name, str):
            return None
        table = self.components[kind]
        if name in table:
            return table[name]
        target = self.aliases[kind].get(name)
        return table.get(target) if target else None

    # --- lookup -----------------------------------------------------------------------------
    def _check_kind(self, kind: str) -> None:
        if kind not in self.components:
            raise UnknownComponentError(f"unknown component kind '{kind}'{did_you_mean(str(kind), KINDS)}")

    def get(self, kind: str, name: str) -> Component:
        self._check_kind(kind)
        found = self._lookup(kind, name)
        if found is None:
            if not isinstance(name, str):
                raise UnknownComponentError(f"a {kind} name must be a string, got {name!r}")
            known = list(self.components[kind]) + list(self.aliases[kind])
            listing = ", ".join(sorted(self.components[kind], key=_natural_key)) or "none"
            raise UnknownComponentError(
                f"unknown {kind} '{name}'{did_you_mean(name, known)}; registered: {listing}",
                hint="run `ganforge plugins` to see what each plugin provides",
            )
        return found

    def has(self, kind: str, name: str) -> bool:
        return kind in self.components and self._lookup(kind, name) is not None

    def list(self, kind: str, pattern: str | list[str] = "*") -> list[str]:
        """Names of one kind matching a wildcard pattern (or any of several), naturally sorted."""
        self._check_kind(kind)
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        names = [n for n in self.components[kind] if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        return sorted(names, key=_natural_key)

    def all(self) -> list[Component]:
        return [c for kind in KINDS for c in self.components[kind].values()]

    def build(self, kind: str, name: str, options: dict | None = None, *, where: str = "") -> Any:
        """Validate ``options`` against the component's config and call its builder."""
        from ganforge.core.config import make_config

        component = self.get(kind, name)
        if component.builder is None:
            raise UnknownComponentError(f"{kind} '{name}' is data, not something to build")
        config = make_config(component, options or {}, where=where)
        return component.build(config)
