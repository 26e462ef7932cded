"""`ganforge recipes` and `ganforge recipes show NAME`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from ganforge.cli import common

recipes_app = typer.Typer(help="List recipes, or show one fully resolved.", invoke_without_command=True, no_args_is_help=False)


@recipes_app.callback()
def recipes_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
):
    """List the recipes the installed plugins ship."""
    if ctx.invoked_subcommand is not None:
        return
    from ganforge.core.recipes import load_recipe

    with common.user_errors():
        registry = common.registry()
        rows = []
        for name in registry.list("recipe"):
            comp = registry.get("recipe", name)
            try:
                recipe = load_recipe(name, registry)
                rows.append({"name": name, "plugin": comp.plugin, "description": recipe.description,
                             "algorithm": recipe.algorithm.name, "steps": recipe.train.steps, "error": None})
            except Exception as exc:  # noqa: BLE001 - one broken recipe must not hide the others
                rows.append({"name": name, "plugin": comp.plugin, "description": "", "algorithm": "", "steps": None,
                             "error": getattr(exc, "message", str(exc))})
        if as_json:
            common.out.print_json(json.dumps({"recipes": rows}))
            return
        table = Table(title="ganforge recipes")
        for col in ("recipe", "plugin", "algorithm", "steps", "description"):
            table.add_column(col)
        for r in rows:
            desc = r["description"] if not r["error"] else f"[red]invalid: {r['error']}[/red]"
            table.add_row(r["name"], r["plugin"], r["algorithm"], str(r["steps"] or ""), desc)
        common.out.print(table)
        common.out.print("[dim]show one: ganforge recipes show NAME; train: ganforge train --recipe NAME[/dim]")


@recipes_app.command("show")
def recipes_show(
    name: Annotated[str, typer.Argument(help="A registered recipe name or a path to a .toml file.")],
    overrides: common.Overrides = None,
):
    """Print a recipe fully resolved (inheritance, overrides and every default filled in)."""
    from ganforge.core.recipes import load_recipe

    with common.user_errors():
        recipe = load_recipe(name, common.registry(), overrides or [])
        common.out.print(f"# {recipe.name}: {recipe.description}".rstrip(": "), markup=False)
        common.out.print(recipe.to_toml(), markup=False)
