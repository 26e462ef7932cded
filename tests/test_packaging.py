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
BUILTINS = {"dcgan", "cyclegan", "losses", "augment", "datasets", "metrics", "cgan", "pix2pix", "sagan"}


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
    for plugin in ("ganforge_gan", "ganforge_dcgan", "ganforge_cifar", "ganforge_cyclegan", "ganforge_losses", "ganforge_augment", "ganforge_datasets",
                   "ganforge_metrics", "ganforge_cgan", "ganforge_pix2pix", "ganforge_sagan"):
        assert f"{plugin}/__init__.py" in names
    for recipe in ("ganforge_dcgan/recipes/dcgan-cats.toml", "ganforge_cyclegan/recipes/cyclegan-cats.toml",
                   "ganforge_dcgan/recipes/wgan-gp-cats.toml", "ganforge_cgan/recipes/cgan-cats-fruit.toml",
                   "ganforge_pix2pix/recipes/pix2pix-edges2cats.toml", "ganforge_sagan/recipes/sagan-cats.toml",
                   "ganforge_cifar/recipes/dcgan-cifar10.toml"):
        assert recipe in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[ganforge]" in text and "dcgan = ganforge_dcgan" in text


def test_wheel_ships_the_cats_and_stays_small(wheel):
    """dcgan-cats and cyclegan-cats train on a fresh install: their 245 faces are package data."""
    zf = zipfile.ZipFile(wheel)
    names = zf.namelist()
    for domain, count in (("grumpy", 179), ("russian_blue", 66)):
        pngs = [n for n in names if n.startswith(f"ganforge_datasets/data/grumpify-cats/{domain}/") and n.endswith(".png")]
        assert len(pngs) == count, (domain, len(pngs))
    assert not [n for n in names if "apple2orange/" in n or n.endswith((".jpg", ".zip", ".tar.gz"))]
    size = wheel.stat().st_size
    print(f"wheel {wheel.name}: {size / 1e6:.2f} MB, {len(names)} files")
    assert size < 4_000_000, f"the wheel grew to {size / 1e6:.1f} MB"


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


def test_installed_wheel_trains_cyclegan_cats_with_no_data_root_and_no_network(wheel, tmp_path):
    """A fresh install: no GANFORGE_DATA, an empty cache, a folder without data; the cats come from the wheel."""
    import os

    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    site = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items() if k != "GANFORGE_DATA"}
    env.update(GANFORGE_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    prefix = "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; sys.argv = ['ganforge'] + sys.argv[3:];" \
             "from ganforge.cli import main; main()"
    work = tmp_path / "work"
    work.mkdir()

    def ganforge(*args):
        return subprocess.run([sys.executable, "-S", "-c", prefix, str(target), site, *args], capture_output=True,
                              text=True, timeout=600, cwd=work, env=env)

    listing = ganforge("data", "list", "--json")
    assert listing.returncode == 0, listing.stderr[-2000:]
    rows = {r["name"]: r for r in json.loads(listing.stdout)["datasets"]}
    assert rows["grumpify-cats"]["where"] == "bundled" and rows["grumpify-cats"]["path"].startswith(str(target))
    run = ganforge("train", "--recipe", "cyclegan-cats", "--steps", "2", "--no-progress", "--set", "train.threads=1",
                   "--set", "log.num_samples=4", "--output-dir", str(work / "run"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert (work / "run" / "report.html").is_file() and (work / "run" / "checkpoints" / "latest").exists()
