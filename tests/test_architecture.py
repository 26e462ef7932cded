"""The core's shape: packages by role, imported in one direction only, and no import circles.

Layers, lowest first: ``core`` (interfaces, registry, recipes, errors) < ``data`` and ``nn`` <
``io`` (files) < ``eval`` < ``train``; ``cli`` and ``testing`` sit on top. A module may import its own
layer and the ones below. Imports inside functions count too (they are how circles hide); imports
under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "ganforge"
LAYERS = {"core": 0, "data": 1, "nn": 1, "io": 2, "eval": 3, "train": 4, "cli": 5, "testing": 5, "__main__": 6}


def _module_name(path: Path) -> str:
    rel = path.relative_to(CORE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULE_FILES = {_module_name(p): p for p in CORE.rglob("*.py")}
MODULES = MODULE_FILES


def _imports(path: Path) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node):
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_ImportFrom(self, node):
            if node.level == 0 and node.module and node.module.split(".")[0] == "ganforge":
                for alias in node.names:  # `from ganforge.cli import common` imports a module
                    sub = f"{node.module}.{alias.name}"
                    found.append((sub if sub in MODULE_FILES else node.module, node.lineno))

        def visit_Import(self, node):
            found.extend((a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "ganforge")

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return found




def _resolve(name: str) -> str | None:
    """The ganforge module an import refers to (`from ganforge.x import f` -> ganforge.x)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        targets = {_resolve(mod) for mod, _ in _imports(path)}
        graph[name] = {t for t in targets if t and t != name and t != "ganforge"}
    return graph


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_no_relative_imports_so_the_graph_is_complete():
    relative = [f"{p.relative_to(CORE.parent)}:{n.lineno}" for p in MODULES.values()
                for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert not relative, f"use absolute imports (ganforge.x.y) in the core: {relative}"


def test_every_core_module_lives_in_a_role_package():
    flat = sorted(n for n in MODULES if n.count(".") == 1 and _layer(n) not in LAYERS)
    assert flat == [], f"modules outside the role packages: {flat}"


def test_layers_import_downwards_only():
    wrong = []
    for name, path in MODULES.items():
        mine = _layer(name)
        if mine not in LAYERS:
            continue
        for mod, line in _imports(path):
            target = _resolve(mod)
            theirs = _layer(target) if target else None
            if theirs in LAYERS and (LAYERS[theirs] > LAYERS[mine] or (LAYERS[theirs] == LAYERS[mine] and theirs != mine)):
                wrong.append(f"{path.relative_to(CORE.parent)}:{line} ({mine}) imports {target} ({theirs})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_circles():
    graph = _graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, f"modules that import each other in a circle: {circles}"


@pytest.mark.parametrize("name", ["Algorithm", "Run", "Batch", "Callback", "Metric", "ImageTensorDataset",
                                  "load_recipe", "DataError", "hookimpl", "cache_dir"])
def test_plugin_authors_have_one_import_point(name):
    import ganforge

    assert getattr(ganforge, name) is not None
    assert name in dir(ganforge)


def test_an_unknown_public_name_is_a_clear_attribute_error():
    import ganforge

    with pytest.raises(AttributeError, match="has no attribute 'Algorithmm'"):
        ganforge.Algorithmm  # noqa: B018


def test_no_public_name_is_shadowed_by_a_subpackage():
    """`from ganforge import X` must give the documented object even after `import ganforge.X...`."""
    import ganforge

    packages = {p.name for p in CORE.iterdir() if (p / "__init__.py").exists()}
    assert not packages & set(ganforge._PUBLIC)


def test_scripts_train_from_ganforge_train():
    import ganforge.train.lr  # noqa: F401 - a submodule imported first must not hide the function
    from ganforge.train import train
    from ganforge.train.loop import train as loop_train

    assert train is loop_train
