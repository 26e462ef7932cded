"""The `ganforge` command line (Typer). One module per command; errors become one clear line."""

from __future__ import annotations

from ganforge.cli.app import app, main

__all__ = ["app", "main"]
