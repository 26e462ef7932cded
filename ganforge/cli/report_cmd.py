"""`ganforge report RUN [--open]`: write a run's report.html and MODEL_CARD.md again (and open the report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ganforge.cli import common


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (what `ganforge train` wrote).")],
    open_it: Annotated[bool, typer.Option("--open", help="Open the report in the default web browser.")] = False,
):
    """Write RUN/report.html (state, loss curves, progress grids, samples) and RUN/MODEL_CARD.md again from the run's files."""
    from ganforge.core.errors import GanforgeError
    from ganforge.io.model_card import write_model_card
    from ganforge.io.report import RECIPE_FILE, write_report

    with common.user_errors():
        if not (run_dir / RECIPE_FILE).is_file():
            raise GanforgeError(f"{run_dir} is not a ganforge run directory (no {RECIPE_FILE})",
                                hint="pass the folder a previous `ganforge train` wrote")
        out = write_report(run_dir)
        common.out.print(f"report: {out}")
        common.out.print(f"model card: {write_model_card(run_dir)}")
        if open_it:
            import webbrowser

            if not webbrowser.open(out.resolve().as_uri()):
                common.err.print(f"no web browser found; open {out.resolve().as_uri()} yourself")
