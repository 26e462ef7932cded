"""`ganforge plugins`: what is installed, where it comes from, what it provides, what failed."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ganforge.core.hookspecs import KINDS
from ganforge.cli import common


def plugins_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show failure tracebacks.")] = False,
):
    """List plugins: version, built-in or third-party, what each provides, and failures."""
    from ganforge.core.plugins import get_plugins

    with common.user_errors():
        plugins = get_plugins()
        plugins.registry  # building the registry fills in what each plugin provides
        infos = sorted(plugins.infos.values(), key=lambda i: (not i.builtin, i.name))
        if as_json:
            common.out.print_json(json.dumps({"plugins": [i.as_dict() for i in infos]}))
            return
        table = Table(title="ganforge plugins (entry-point group 'ganforge')", show_lines=False)
        table.add_column("plugin", style="bold")
        table.add_column("version")
        table.add_column("source")
        table.add_column("provides")
        for info in infos:
            if info.disabled:
                provides = "[dim]disabled (GANFORGE_DISABLE_PLUGINS)[/dim]"
            elif info.error:
                provides = f"[red]FAILED: {info.error}[/red]"
            else:
                provides = "\n".join(f"{kind}: {', '.join(info.provides[kind])}" for kind in KINDS if info.provides.get(kind))
            for warning in info.warnings:
                provides += f"\n[yellow]warning: {warning}[/yellow]"
            source = "built-in" if info.builtin else f"third-party ({info.distribution or 'local'})"
            table.add_row(info.name, info.version or "", source, provides or "[dim]nothing[/dim]")
        common.out.print(table)
        failures = plugins.failures()
        if failures:
            common.err.print(f"[yellow]{len(failures)} plugin(s) failed to load and are skipped[/yellow]; the rest work.")
            if verbose:
                for info in failures:
                    common.err.print(f"--- {info.name} ---\n{info.traceback}")
