"""Errors a user can cause. The CLI prints them as one line (plus a hint) and exits non-zero."""

from __future__ import annotations

import difflib
from typing import Iterable


class GanforgeError(Exception):
    """An error with a message for the user and an optional hint on what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class PluginError(GanforgeError):
    pass


class UnknownComponentError(GanforgeError):
    pass


class RecipeError(GanforgeError):
    pass


class RecipeErrors(RecipeError):
    """Several problems in one recipe, reported together (``problems`` holds each error)."""

    def __init__(self, problems: list[GanforgeError], label: str):
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problems in recipe {label}:"]
        for problem in self.problems:
            lines.append(f"  - {problem.message}" + (f" ({problem.hint})" if problem.hint else ""))
        super().__init__("\n".join(lines), hint="fix them all, then run again")


class DataError(GanforgeError):
    pass


class CheckpointError(GanforgeError):
    pass


class TrainingError(GanforgeError):
    pass


class TrainingInterrupted(GanforgeError):
    exit_code = 130


class ExportError(GanforgeError):
    """A network that cannot be exported (`ganforge export`): an operation the exporter does not
    support, a family that declares nothing to export, or an export that does not match PyTorch."""


class PluginCodeError(GanforgeError):
    """An exception raised inside a plugin's code (a builder, an algorithm's step, a network's
    forward), reported as one line naming plugin, kind and component; ``--debug`` shows the
    original traceback (it is this error's ``__cause__``)."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
