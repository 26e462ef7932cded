"""The Typer application and its entry point."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ganforge import __version__
from ganforge.cli import common
from ganforge.cli.data_cmd import data_app
from ganforge.cli.demo_cmd import demo_command
from ganforge.cli.eval_cmd import eval_command, metrics_app
from ganforge.cli.export_cmd import export_command
from ganforge.cli.plugins_cmd import plugins_command
from ganforge.cli.recipes_cmd import recipes_app
from ganforge.cli.report_cmd import report_command
from ganforge.cli.sample import sample_command
from ganforge.cli.train import train_command
from ganforge.cli.translate import translate_command

app = typer.Typer(
    name="ganforge",
    help="Train GANs from recipes composed of plugin components (`ganforge plugins` lists them).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool):
    if value:
        common.out.print(f"ganforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors (or set GANFORGE_DEBUG=1).")] = False,
):
    common.state["debug"] = debug


app.command("train")(train_command)
app.command("sample")(sample_command)
app.command("translate")(translate_command)
app.command("eval")(eval_command)
app.command("plugins")(plugins_command)
app.command("report")(report_command)
app.command("export")(export_command)
app.command("demo")(demo_command)
app.add_typer(recipes_app, name="recipes")
app.add_typer(data_app, name="data")
app.add_typer(metrics_app, name="metrics")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
