"""Finding data, loading folders (including bad files), and the built-in datasets."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge.data.folders as gdata
from ganforge.data.folders import (
    DataWarning,
    ImageTensorDataset,
    data_root,
    load_image_folder,
    resolve_data_path,
)
from ganforge.core.errors import DataError
from ganforge_datasets import (
    Apple2OrangeConfig,
    GrumpifyCatsConfig,
    ImageFolderConfig,
    register_datasets,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("GANFORGE_DATA", REPO.parent / "shared" / "data"))
CATS = DATA / "grumpify-cats"
needs_data = pytest.mark.skipif(not (CATS / "grumpy").is_dir(),
                                reason=f"real data not found at {DATA} (set GANFORGE_DATA to the shared data folder)")


@pytest.fixture
def datasets():
    """name -> (builder, config class), collected through the plugin's hook."""
    found = {}

    def register(name, builder, config=None, *, summary=None, aliases=()):
        assert name not in found and summary
        found[name] = (builder, config)

    register_datasets(register)
    return found


def build(datasets, name, **options):
    builder, config_cls = datasets[name]
    return builder(config_cls(**options))


def write_png(path: Path, size=(16, 16), color=(200, 100, 50)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_truncated(path: Path) -> Path:
    rng = np.random.default_rng(1)
    full = path.with_name("full-tmp.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(full)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


# --- where data is found -------------------------------------------------------------------------


def test_data_root_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.setenv("GANFORGE_DATA", "")
    assert data_root() is None
    monkeypatch.delenv("GANFORGE_DATA")
    assert data_root() is None


def test_resolve_absolute_cwd_and_root(monkeypatch, tmp_path):
    (tmp_path / "root" / "cats").mkdir(parents=True)
    (tmp_path / "work" / "local").mkdir(parents=True)
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "root"))
    monkeypatch.chdir(tmp_path / "work")
    assert resolve_data_path(tmp_path / "root" / "cats") == tmp_path / "root" / "cats"
    assert resolve_data_path("local").resolve() == (tmp_path / "work" / "local").resolve()
    assert resolve_data_path("cats") == tmp_path / "root" / "cats"


def test_missing_path_says_where_it_looked_and_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "root"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        resolve_data_path("grumpify-cats", what="dataset folder")
    msg = str(info.value)
    assert str(tmp_path / "grumpify-cats") in msg
    assert str(tmp_path / "root" / "grumpify-cats") in msg
    assert "GANFORGE_DATA" in msg and "--data" in msg


def test_missing_path_without_data_root_mentions_it(monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="GANFORGE_DATA is not set"):
        resolve_data_path("cats")


# --- ImageTensorDataset ------------------------------------------------------------------------


def test_dataset_items_and_batches_are_float_in_range():
    u8 = torch.randint(0, 256, (6, 3, 4, 4), dtype=torch.uint8)
    u8[0] = 0
    u8[1] = 255
    ds = ImageTensorDataset(u8, [f"n{i}" for i in range(6)])
    assert len(ds) == 6 and ds.image_size == (4, 4)
    assert ds[0].dtype == torch.float32 and ds[0].shape == (3, 4, 4)
    assert ds[0].eq(-1).all() and ds[1].eq(1).all()
    idx = torch.tensor([5, 0, 3])
    batch = ds.get_batch(idx)
    assert batch.shape == (3, 3, 4, 4)
    assert torch.equal(batch, torch.stack([ds[i] for i in idx.tolist()]))


def test_dataset_rejects_wrong_tensors():
    with pytest.raises(ValueError):
        ImageTensorDataset(torch.zeros(2, 3, 4, 4))  # float, not uint8
    with pytest.raises(ValueError):
        ImageTensorDataset(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), ["only-one"])


# --- load_image_folder -------------------------------------------------------------------------


def test_bad_files_are_skipped_with_one_warning(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"good{i}.png", color=(10 * i, 0, 0))
    write_truncated(tmp_path / "broken.png")
    (tmp_path / "x.png").write_text("not really a png")
    (tmp_path / "readme.txt").write_text("notes")

    with pytest.warns(DataWarning) as record:
        ds = load_image_folder(tmp_path, 16)
    assert len(record) == 1
    msg = str(record[0].message)
    assert "skipped 2" in msg and "broken.png" in msg and "x.png" in msg
    assert ds.names == ["good0.png", "good1.png", "good2.png"]
    assert ds.images.shape == (3, 3, 16, 16)
    assert ds.warnings == [msg]


def test_all_corrupt_folder_raises(tmp_path):
    (tmp_path / "a.png").write_text("nope")
    write_truncated(tmp_path / "b.png")
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path, 16)
    msg = str(info.value)
    assert "none of the 2 image files" in msg and str(tmp_path) in msg


def test_folder_without_images_raises(tmp_path):
    (tmp_path / "labels.csv").write_text("a,b")
    with pytest.raises(DataError, match=r"no images found in .*\.png.*labels\.csv"):
        load_image_folder(tmp_path, 16)


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(DataError, match="not found.*nothing-here"):
        load_image_folder(tmp_path / "nothing-here", 16)
    f = write_png(tmp_path / "one.png")
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(f, 16)


def test_small_images_are_upscaled_with_one_warning(tmp_path):
    for i in range(4):
        write_png(tmp_path / f"small{i}.png", size=(8, 8))
    write_png(tmp_path / "big.png", size=(40, 40))
    with pytest.warns(DataWarning) as record:
        ds = load_image_folder(tmp_path, 32)
    assert len(record) == 1
    msg = str(record[0].message)
    assert "upscaled 4" in msg and "small0.png" in msg and "32x32" in msg
    assert ds.images.shape == (5, 3, 32, 32)


def test_clean_folder_emits_no_warning(tmp_path):
    write_png(tmp_path / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image_folder(tmp_path, 16)


def test_max_images_and_recursion(tmp_path):
    for i in [1, 2, 10]:
        write_png(tmp_path / "sub" / f"{i}.png")
    ds = load_image_folder(tmp_path, 8, max_images=2)
    assert ds.names == ["sub/1.png", "sub/2.png"]


def test_repeated_loads_reuse_the_decoded_tensor(tmp_path, monkeypatch):
    write_png(tmp_path / "a.png")
    calls = []
    real_read = gdata.read_image
    monkeypatch.setattr(gdata, "read_image", lambda p: calls.append(p) or real_read(p))
    first = load_image_folder(tmp_path, 8)
    second = load_image_folder(tmp_path, 8)
    assert len(calls) == 1 and second.images.data_ptr() == first.images.data_ptr()
    load_image_folder(tmp_path, 4)  # another size decodes again
    assert len(calls) == 2
    # a changed file is noticed
    write_png(tmp_path / "a.png", color=(0, 0, 0))
    os.utime(tmp_path / "a.png", ns=(time.time_ns() + 10**9,) * 2)
    third = load_image_folder(tmp_path, 8)
    assert len(calls) == 3 and third.images.max() == 0


# --- the dataset plugin ------------------------------------------------------------------------


def test_registered_names_and_frozen_configs(datasets):
    assert {"image-folder", "unpaired-folders", "grumpify-cats", "apple2orange", "shapes"} <= set(datasets)
    assert {"horse2zebra", "monet2photo", "facades", "edges2shoes"} <= set(datasets)  # fetchable sets
    assert GrumpifyCatsConfig() == GrumpifyCatsConfig(path="grumpify-cats", domain_a="russian_blue",
                                                      domain_b="grumpy", image_size=64)
    assert Apple2OrangeConfig().domain_a == "apple" and Apple2OrangeConfig().domain_b == "orange"
    with pytest.raises(Exception):
        ImageFolderConfig().path = "x"  # frozen


def test_image_folder_needs_a_path(datasets):
    with pytest.raises(DataError) as info:
        build(datasets, "image-folder")
    assert "data.path" in str(info.value) and "--data" in str(info.value)


def test_image_folder_from_data_root(datasets, tmp_path, monkeypatch):
    for i in range(3):
        write_png(tmp_path / "faces" / f"{i}.png", size=(20, 10))
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))
    domains = build(datasets, "image-folder", path="faces", image_size=8, max_images=2)
    assert list(domains) == ["images"] and len(domains["images"]) == 2
    assert domains["images"][0].shape == (3, 8, 8)


def test_unpaired_folders_sizes_may_differ(datasets, tmp_path):
    for i in range(3):
        write_png(tmp_path / "horses" / f"{i}.png")
    write_png(tmp_path / "zebras" / "z.png")
    domains = build(datasets, "unpaired-folders", path=str(tmp_path), domain_a="horses", domain_b="zebras",
                    image_size=8)
    assert list(domains) == ["a", "b"] and (len(domains["a"]), len(domains["b"])) == (3, 1)


def test_unpaired_missing_domain_names_it_and_lists_subfolders(datasets, tmp_path):
    write_png(tmp_path / "horses" / "0.png")
    (tmp_path / "zebra").mkdir()
    with pytest.raises(DataError) as info:
        build(datasets, "unpaired-folders", path=str(tmp_path), domain_a="horses", domain_b="zebras")
    msg = str(info.value)
    assert "domain B" in msg and "'zebras'" in msg and "horses, zebra" in msg and "data.domain_b" in msg


def test_preset_missing_explains_data_root(datasets, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        build(datasets, "apple2orange")
    assert str(tmp_path / "apple2orange") in str(info.value) and "GANFORGE_DATA" in str(info.value)
    assert "ganforge data fetch apple2orange" in info.value.hint


def test_cats_ship_with_the_plugin(datasets, tmp_path, monkeypatch):
    """With no data root and no network the cat recipes' data is found in the package."""
    from ganforge_datasets import BUNDLED_ROOT

    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    domains = build(datasets, "grumpify-cats")
    assert (len(domains["a"]), len(domains["b"])) == (66, 179)
    assert domains["b"].source == str(BUNDLED_ROOT / "grumpify-cats" / "grumpy")
    images = build(datasets, "image-folder", path="grumpify-cats/grumpy")["images"]  # what dcgan-cats names
    assert len(images) == 179
    # GANFORGE_DATA still comes first
    (tmp_path / "root" / "grumpify-cats" / "grumpy").mkdir(parents=True)
    (tmp_path / "root" / "grumpify-cats" / "russian_blue").mkdir()
    for sub, n in (("grumpy", 3), ("russian_blue", 2)):
        for png in sorted((BUNDLED_ROOT / "grumpify-cats" / sub).glob("*.png"))[:n]:
            (tmp_path / "root" / "grumpify-cats" / sub / png.name).write_bytes(png.read_bytes())
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "root"))
    domains = build(datasets, "grumpify-cats")
    assert (len(domains["a"]), len(domains["b"])) == (2, 3)


def test_fetched_apple2orange_layout_is_found(datasets, tmp_path, monkeypatch):
    """apple2orange works both as apple/ + orange/ (a hand-made copy) and as trainA/ + trainB/ (fetched)."""
    from ganforge_datasets import BUNDLED_ROOT

    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cache" / "datasets" / "apple2orange"
    for sub, src in (("trainA", "russian_blue"), ("trainB", "grumpy")):
        (root / sub).mkdir(parents=True)
        for png in sorted((BUNDLED_ROOT / "grumpify-cats" / src).glob("*.png"))[:2]:
            (root / sub / png.name).write_bytes(png.read_bytes())
    domains = build(datasets, "apple2orange")
    assert domains["a"].source == str(root / "trainA") and len(domains["b"]) == 2


@needs_data
def test_real_grumpy_folder(monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(DATA))
    ds = load_image_folder(resolve_data_path("grumpify-cats/grumpy"), 64)
    assert len(ds) == 179 and ds.images.shape == (179, 3, 64, 64)
    batch = ds.get_batch(torch.arange(len(ds)))
    assert batch.min() >= -1 and batch.max() <= 1
    assert batch.min() < -0.5 and batch.max() > 0.5  # real contrast, not a constant


@needs_data
def test_truncated_real_file_is_skipped(tmp_path):
    data = (CATS / "grumpy" / "0.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "whole.png").write_bytes(data)
    with pytest.warns(DataWarning, match="skipped 1 .*half.png"):
        ds = load_image_folder(tmp_path, 64)
    assert ds.names == ["whole.png"]


@needs_data
def test_real_grumpify_cats_preset(datasets, monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_DATA", str(DATA))
    monkeypatch.chdir(tmp_path)  # resolved through the data root, not the cwd
    domains = build(datasets, "grumpify-cats")
    assert (len(domains["a"]), len(domains["b"])) == (66, 179)
    assert domains["a"][0].shape == (3, 64, 64)


@needs_data
def test_real_data_at_smaller_size(datasets, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(DATA))
    domains = build(datasets, "unpaired-folders", path=str(CATS), domain_a="grumpy", domain_b="russian_blue",
                    image_size=32)
    assert domains["a"].images.shape == (179, 3, 32, 32) and len(domains["b"]) == 66


# --- shapes -------------------------------------------------------------------------------------


def test_shapes_default_is_fast_and_sized(datasets):
    start = time.perf_counter()
    ds = build(datasets, "shapes")["images"]
    elapsed = time.perf_counter() - start
    assert ds.images.shape == (2048, 3, 32, 32) and ds.images.dtype == torch.uint8
    assert elapsed < 10  # ~0.1 s normally; loose for a busy machine
    # every image has some shape on it: not a flat background
    flat = ds.images.float().flatten(1).std(dim=1)
    assert (flat > 5).all()


def test_shapes_deterministic_per_seed(datasets):
    a = build(datasets, "shapes", num_images=16, image_size=16, seed=1)["images"].images
    b = build(datasets, "shapes", num_images=16, image_size=16, seed=1)["images"].images
    c = build(datasets, "shapes", num_images=16, image_size=16, seed=2)["images"].images
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_shapes_subset_and_invalid_names(datasets):
    ds = build(datasets, "shapes", num_images=4, image_size=16, shapes=" Circle , star")["images"]
    assert len(ds) == 4
    with pytest.raises(DataError) as info:
        build(datasets, "shapes", shapes="circle,hexagon")
    msg = str(info.value)
    assert "hexagon" in msg and "circle" in msg and "square" in msg and "triangle" in msg
    with pytest.raises(DataError, match="did you mean 'square'"):
        build(datasets, "shapes", shapes="sqare")


def test_core_does_not_import_plugins():
    for name in ("data/folders.py", "data/images.py"):
        text = (REPO / "ganforge" / name).read_text()
        assert "import ganforge_" not in text and "from ganforge_" not in text
