"""The core never depends on a plugin: it only talks to plugins through the registry."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "ganforge"
CORE_FILES = sorted(CORE.rglob("*.py"))


def _forbidden(module: str | None) -> bool:
    if not module:
        return False
    top = module.split(".")[0]
    return top == "plugins" or top.startswith("ganforge_")


def plugin_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _forbidden(node.module):
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
            # importlib.import_module("ganforge_x") / __import__("ganforge_x") with a literal name
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                if _forbidden(node.args[0].value):
                    found.append(f"line {node.lineno}: dynamic import of {node.args[0].value}")
    return found


def test_the_scan_sees_the_core():
    names = {p.relative_to(CORE).as_posix() for p in CORE_FILES}
    assert {"core/registry.py", "core/recipes.py", "core/config.py", "core/plugins.py", "testing.py"} <= names


def test_the_scan_catches_plugin_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nimport ganforge_dcgan.models\nfrom plugins.ganforge_losses import x\n"
        "from ganforge_augment import diffaug\nfrom .plugins import get_plugins\nimport importlib\n"
        "importlib.import_module('ganforge_cyclegan')\n"
    )
    assert [f.split(":")[0] for f in plugin_imports(sample)] == ["line 2", "line 3", "line 4", "line 7"]


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_module_does_not_import_plugins(path):
    assert plugin_imports(path) == [], f"{path.relative_to(CORE.parent)} imports a plugin"


def test_importing_the_core_loads_no_plugin():
    code = (
        "import json, sys\n"
        "import ganforge, ganforge.core.registry, ganforge.core.recipes, ganforge.core.config, ganforge.core.plugins\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0].startswith('ganforge_') or m.split('.')[0] == 'plugins')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
