"""Shared CLI plumbing: consoles, error handling, option aliases."""

from __future__ import annotations

import os
import traceback
import warnings
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from ganforge.core.errors import GanforgeError

DEBUG_ENV = "GANFORGE_DEBUG"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

state = {"debug": False}


def debug_enabled() -> bool:
    return state["debug"] or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def fail(message: str, hint: str | None = None, code: int = 2) -> typer.Exit:
    from rich.markup import escape  # messages may hold brackets (`pip install ganforge[metrics]`)

    err.print(f"[bold red]error:[/bold red] {escape(message)}", markup=True, highlight=False)
    if hint:
        err.print(f"  [dim]hint:[/dim] {escape(hint)}")
    return typer.Exit(code)


@contextmanager
def user_errors():
    """Turn GanforgeError (and a few OS errors) into one line + hint and a non-zero exit."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            yield
        except GanforgeError as exc:
            if debug_enabled():
                traceback.print_exc()
            raise fail(exc.message, exc.hint, exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None
        except (PermissionError, IsADirectoryError, NotADirectoryError, FileNotFoundError) as exc:
            if debug_enabled():
                traceback.print_exc()
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            raise fail(f"{exc.strerror or exc}{where}", f"run with --debug ({DEBUG_ENV}=1) for the traceback") from None
        except OSError as exc:
            if debug_enabled():
                traceback.print_exc()
            if getattr(exc, "errno", None) == 28:  # ENOSPC
                raise fail("the disk is full; the last good checkpoint is intact", "free some space and resume with --resume") from None
            raise fail(f"{exc}", f"run with --debug ({DEBUG_ENV}=1) for the traceback") from None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    err.print(f"[yellow]warning:[/yellow] {message}")


def registry():
    from ganforge.core.plugins import get_plugins

    plugins = get_plugins()
    if debug_enabled():  # the one-line warnings said what failed; --debug also shows where
        for info in plugins.failures():
            if info.traceback:
                err.print(f"[dim]traceback of plugin '{info.name}':[/dim]")
                err.print(info.traceback, markup=False, highlight=False)
    return plugins.registry


Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a recipe key: section.key=value (value in TOML syntax). Repeatable."),
]
