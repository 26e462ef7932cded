"""The built wheel works on its own: it carries the built-in plugins, their recipes and entry points."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILTINS = {"dcgan", "cyclegan", "losses", "augment", "datasets", "metrics"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheels = list(out.glob("ganforge-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_contains_core_plugins_and_recipes(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "ganforge/cli/app.py" in names
    for plugin in ("ganforge_dcgan", "ganforge_cyclegan", "ganforge_losses", "ganforge_augment", "ganforge_datasets",
                   "ganforge_metrics"):
        assert f"{plugin}/__init__.py" in names
    assert "ganforge_dcgan/recipes/dcgan-cats.toml" in names
    assert "ganforge_cyclegan/recipes/cyclegan-cats.toml" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[ganforge]" in text and "dcgan = ganforge_dcgan" in text


def test_installed_wheel_lists_builtins_through_entry_points(wheel, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # `-S` skips site-packages' .pth files, so the editable install of this checkout is invisible;
    # the wheel's folder comes first and the dependencies come from site-packages.
    site = sysconfig.get_paths()["purelib"]
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; sys.argv = ['ganforge', 'plugins', '--json'];"
        "import ganforge, ganforge_dcgan; print('WHERE', ganforge.__file__, ganforge_dcgan.__file__);"
        "from ganforge.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(target), site], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, _, rest = proc.stdout.partition("\n")
    assert where.count(str(target)) == 2, where  # both core and plugin come from the wheel
    plugins = {p["name"]: p for p in json.loads(rest)["plugins"]}
    assert BUILTINS <= set(plugins)
    for name in BUILTINS:
        assert plugins[name]["builtin"] and not plugins[name]["error"]
    assert "dcgan-cats" in plugins["dcgan"]["provides"]["recipe"]
