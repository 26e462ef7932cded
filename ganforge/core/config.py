"""Component configs: dataclasses whose fields are exactly the options a recipe may set.

Values come from TOML, so they are checked and coerced here (an int where a float is expected is
fine, a list where a tuple is expected is fine) and every problem is reported with the recipe key
and where that key was set.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Callable, Literal, Union, get_args, get_origin

from ganforge.core.errors import RecipeError, RecipeErrors, did_you_mean

Origin = Callable[[str], str]


def _no_origin(key: str) -> str:
    return ""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (tuple, list):
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(set(args)) == 1:
                return f"a list of {len(args)} values, each {_type_name(args[0])}"
            return f"a list of {len(args)} values ({', '.join(_type_name(a) for a in args)})"
        inner = [a for a in args if a is not Ellipsis]
        return f"a list of values, each {_type_name(inner[0])}" if inner else "a list"
    if tp is type(None):
        return "nothing (omit the key)"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


class _Mismatch(Exception):
    pass


def coerce(value: Any, tp: Any) -> Any:
    """Return ``value`` converted to type ``tp`` or raise _Mismatch."""
    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        if value in get_args(tp) and type(value) in {type(a) for a in get_args(tp)}:
            return value
        raise _Mismatch
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return coerce(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch
            return tuple(coerce(v, a) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [coerce(v, inner) for v in value]
        return tuple(items) if origin is tuple else items
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _Mismatch


def field_types(config_cls: type) -> dict[str, Any]:
    """Option name -> type for the fields a recipe may set (``init=False`` fields are not options)."""
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # noqa: BLE001 - e.g. a string annotation naming something not importable
        hints = {}
    fields = [f for f in dataclasses.fields(config_cls) if f.init]
    # An annotation that cannot be resolved is not checked (rather than making the component unusable).
    return {f.name: hints.get(f.name, f.type if not isinstance(f.type, str) else Any) for f in fields}


def build_dataclass(config_cls: type, options: dict, *, section: str, origin: Origin = _no_origin, what: str = ""):
    """Instantiate ``config_cls`` from recipe options, with errors that name key, file and expectation."""
    types_ = field_types(config_cls)
    values = {}
    problems = []
    for key, value in options.items():
        dotted = f"{section}.{key}" if section else key
        where = origin(dotted)
        where = f" (set in {where})" if where else ""
        if key not in types_:
            valid = ", ".join(types_) or "none"
            problems.append(RecipeError(
                f"unknown option '{dotted}'{where}{did_you_mean(key, types_)}; {what or section} accepts: {valid}"
            ))
            continue
        try:
            values[key] = coerce(value, types_[key])
        except _Mismatch:
            problems.append(RecipeError(f"option '{dotted}'{where} must be {_type_name(types_[key])}, got {value!r}"))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise RecipeErrors(problems, f"section [{section}]" if section else "options")
    try:
        config = config_cls(**values)
    except (TypeError, ValueError) as exc:
        places = sorted({w for w in (origin(f"{section}.{k}" if section else k) for k in options) if w})
        where = f" (set in {', '.join(places)})" if places else ""
        raise RecipeError(f"invalid options for {what or section}: {exc}{where}") from None
    # Configs may validate themselves in __post_init__ (raising ValueError) — handled above.
    return config


def make_config(component, options: dict, *, where: str = "", origin: Origin = _no_origin):
    if component.config is None:
        if options:
            raise RecipeError(f"{component.kind} '{component.name}' takes no options, got: {', '.join(options)}")
        return None
    return build_dataclass(
        component.config, options, section=where, origin=origin, what=f"{component.kind} '{component.name}'"
    )


def config_to_dict(config) -> dict:
    """A JSON-friendly dict of a config (tuples become lists)."""
    if config is None:
        return {}
    return json.loads(json.dumps(dataclasses.asdict(config)))
