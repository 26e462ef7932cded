"""`ganforge data list` and `ganforge data fetch NAME`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ganforge.cli import common

data_app = typer.Typer(help="Datasets: where each one is, and fetching the public ones into the cache.",
                       no_args_is_help=True)


def _sources(registry) -> dict:
    """dataset name -> DataSource (None for datasets that read a folder you choose)."""
    return {name: getattr(registry.get("dataset", name).config, "data_source", None)
            for name in registry.list("dataset")}


def _used_by(registry, names) -> dict[str, list[str]]:
    """dataset name -> the registered recipes that train on it."""
    from ganforge.core.recipes import load_recipe

    used: dict[str, list[str]] = {n: [] for n in names}
    for recipe_name in registry.list("recipe"):
        try:
            recipe = load_recipe(recipe_name, registry)
        except Exception:  # noqa: BLE001 - a broken recipe is reported by `ganforge recipes`
            continue
        data = recipe.data
        path = str(getattr(data.config, "path", "") or "")
        first = path.replace("\\", "/").split("/", 1)[0]
        # A plain folder dataset reading a known set's folder (dcgan-cats: grumpify-cats/grumpy) uses that set.
        known = getattr(registry.get("dataset", data.name).config, "data_source", None) is not None
        key = first if not known and first in used else data.name
        used.setdefault(key, []).append(recipe_name)
    return used


@data_app.command("list")
def data_list(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False):
    """Every dataset a recipe can name: where it is, whether it is present, its size and source."""
    from ganforge.data.sources import cache_dir, data_root, folder_size, human_size, locate

    with common.user_errors():
        registry = common.registry()
        sources = _sources(registry)
        used = _used_by(registry, sources)
        rows = []
        for name, source in sources.items():
            row = {"name": name, "kind": "folder", "present": None, "path": None, "where": "",
                   "bytes": None, "source": "a folder you name (data.path or --data)", "recipes": used.get(name, [])}
            if source is not None:
                found = locate(source)
                row.update(kind=source.kind, where=found.where,
                           path=str(found.path) if found.path else None)
                if source.kind == "generated":
                    row.update(present=True, source="generated, no files")
                else:
                    row["present"] = found.path is not None
                    row["bytes"] = folder_size(found.path) if found.path else source.size
                    row["source"] = ("shipped with ganforge" if source.kind == "bundled" else source.url)
            rows.append(row)
        if as_json:
            common.out.print_json(json.dumps({"cache": str(cache_dir()), "data_root": str(data_root() or ""),
                                              "datasets": rows}))
            return
        table = Table(show_lines=False, header_style="bold", box=None, pad_edge=False)
        table.add_column("dataset", no_wrap=True)
        table.add_column("present", no_wrap=True)
        table.add_column("size", no_wrap=True, justify="right")
        table.add_column("source", no_wrap=True)
        table.add_column("where", overflow="fold")
        for row in rows:
            if row["kind"] == "folder":
                present, where = "-", "data.path / --data"
            elif row["kind"] == "generated":
                present, where = "yes", "-"
            elif row["present"]:
                present, where = "[green]yes[/green]", f"{row['path']} ({row['where']})"
            else:
                present, where = "[yellow]no[/yellow]", "-"
            size = "-" if row["bytes"] is None else human_size(row["bytes"])
            if row["kind"] == "download" and not row["present"]:
                size = f"~{size}"
            source = {"folder": "your folder", "generated": "generated", "bundled": "shipped"}.get(row["kind"])
            if source is None:
                source = sources[row["name"]].family + " " + (sources[row["name"]].archive or "")
            table.add_row(row["name"], present, size, source, where)
        common.out.print(table)
        root = data_root()
        common.out.print(f"\ncache: {cache_dir()} (GANFORGE_CACHE moves it); data root: "
                         f"{root if root else 'GANFORGE_DATA is not set'}")
        common.out.print("fetch a missing one: ganforge data fetch NAME; URLs and recipes: ganforge data list --json")


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="The dataset to download (see `ganforge data list`).")],
    from_archive: Annotated[Optional[Path], typer.Option("--from", help="Use this archive, downloaded by hand, instead of downloading.")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="Download from this URL (a mirror) instead of the dataset's own.")] = None,
    sha256: Annotated[Optional[str], typer.Option("--sha256", help="Check the archive against this SHA-256.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if the dataset is present in the cache.")] = False,
    keep_archive: Annotated[bool, typer.Option("--keep-archive", help="Keep the downloaded archive in the cache.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
):
    """Download a public dataset into the cache (resumable), check it and extract it atomically."""
    from ganforge.data.sources import human_size
    from ganforge.core.errors import DataError, did_you_mean
    from ganforge.data.fetch import fetch

    with common.user_errors():
        registry = common.registry()
        sources = {n: s for n, s in _sources(registry).items() if s is not None and s.kind == "download"}
        source = sources.get(name)
        if source is None:
            other = _sources(registry).get(name)
            if other is not None:
                raise DataError(f"{name} is {other.kind}: there is nothing to fetch (see `ganforge data list`)")
            raise DataError(f"no downloadable dataset '{name}'{did_you_mean(name, sources)}",
                            hint="these can be fetched: " + ", ".join(sources))
        if from_archive is None:
            common.err.print(f"fetching {name} (~{human_size(source.size)}) from {url or source.url}")
        result = fetch(source, url=url, from_archive=from_archive, sha256=sha256, force=force,
                       keep_archive=keep_archive, console=common.err, progress=progress)
        if result.already:
            common.out.print(f"{name} is already in {result.path} (--force fetches it again)")
        else:
            common.out.print(f"{name}: {result.path} ({human_size(result.archive_bytes)} archive, "
                             f"sha256 {result.sha256})")
