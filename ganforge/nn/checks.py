"""Validation helpers for network configs: raise ``ValueError`` with the option's name, which the
recipe loader turns into an error naming the recipe key."""

from __future__ import annotations

from typing import Any, Iterable


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_int(name: str, value: int, minimum: int = 1) -> None:
    """``value`` must be an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        need = "a positive integer" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {need}, got {value!r}")
