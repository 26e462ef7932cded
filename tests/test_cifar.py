"""CIFAR-10 / CIFAR-100 end to end on small synthetic archives in the real binary layout: `ganforge
data fetch` (--from, and over HTTP from 127.0.0.1 with a resumed download), the published-MD5 check,
damaged files, loading the records exactly, the four CIFAR-10 recipes for two steps, `ganforge eval
--protocol cifar10` scaled down, and the DiffAugment policies the recipes use (cutmix, saturation).
Nothing is downloaded from the internet."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _cli_helpers import QUIET, ok, one_error_line, run_cli
from ganforge.core.errors import DataError
from ganforge_cifar import CIFAR10, CIFAR100, Cifar10Config, Cifar100Config, build_cifar

torch.set_num_threads(1)

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PER_BATCH, TEST = 8, 10  # 5 training batches of 8 records (40 images) and a test batch of 10


# --- synthetic archives in the real layout ---------------------------------------------------------
def _records(rng: np.random.Generator, n: int, label_values: list[int]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``n`` records: label byte(s), then the R, G and B planes of a 32x32 image (row-major).
    Returns the bytes, the images as HWC uint8 (the natural layout, written through the planes) and
    the labels [n, k]."""
    hwc = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = np.stack([rng.integers(0, v, size=n) for v in label_values], axis=1).astype(np.uint8)
    out = bytearray()
    for i in range(n):
        out += bytes(labels[i].tolist())
        for channel in range(3):  # 1,024 red bytes, then green, then blue
            out += hwc[i, :, :, channel].tobytes()
    return bytes(out), hwc, labels


def _tar(path: Path, top: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def cifar10_files(seed: int = 0) -> tuple[dict[str, bytes], dict[str, tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    files, expected = {}, {}
    for name, n in [*((f"data_batch_{i}.bin", PER_BATCH) for i in range(1, 6)), ("test_batch.bin", TEST)]:
        files[name], hwc, labels = _records(rng, n, [10])
        expected[name] = (hwc, labels)
    files["batches.meta.txt"] = ("\n".join(CIFAR10_NAMES) + "\n\n").encode()
    files["readme.html"] = b"<html>synthetic</html>"
    return files, expected


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _pinned(monkeypatch, config_cls, source, archive: Path) -> None:
    """The catalogue's published MD5 is that of the real archive: point it at the synthetic one."""
    monkeypatch.setattr(config_cls, "data_source", replace(source, md5=md5(archive)))


def _datasets(cache: Path) -> list[str]:
    d = cache / "datasets"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANFORGE_CACHE", str(cache))
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    return cache


@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> SimpleNamespace:
    """A cache holding the synthetic CIFAR-10, fetched with `ganforge data fetch cifar10 --from`."""
    root = tmp_path_factory.mktemp("cifar")
    files, expected = cifar10_files()
    archive = _tar(root / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", files)
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_CACHE", str(cache))
        mp.chdir(root)
        _pinned(mp, Cifar10Config, CIFAR10, archive)
        result = run_cli("data", "fetch", "cifar10", "--from", archive, "--no-progress", env={"GANFORGE_CACHE": str(cache)})
    ok(result)
    return SimpleNamespace(root=root, cache=cache, archive=archive, expected=expected, output=result.output)


@pytest.fixture
def use_fetched(fetched, monkeypatch) -> SimpleNamespace:
    monkeypatch.setenv("GANFORGE_CACHE", str(fetched.cache))
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.chdir(fetched.root)
    return fetched


def _env(fetched) -> dict:
    return {"GANFORGE_CACHE": str(fetched.cache)}


# --- fetch and load -----------------------------------------------------------------------------------
def test_fetch_from_archive_installs_the_records_and_records_the_md5(use_fetched):
    dest = use_fetched.cache / "datasets" / "cifar10"
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin", "batches.meta.txt", "readme.html",
         ".ganforge-source.json"])
    manifest = json.loads((dest / ".ganforge-source.json").read_text())
    assert manifest["md5"] == md5(use_fetched.archive) and manifest["from"] == str(use_fetched.archive)
    assert str(dest) in use_fetched.output.replace("\n", "")
    assert _datasets(use_fetched.cache) == ["cifar10"]  # no temporary folder left behind
    listing = run_cli("data", "list", "--json", env=_env(use_fetched))
    ok(listing)
    rows = {r["name"]: r for r in json.loads(listing.stdout)["datasets"]}
    assert rows["cifar10"]["present"] and rows["cifar10"]["where"] == "cache"
    assert {"dcgan-cifar10", "cgan-cifar10", "wgan-gp-cifar10", "sagan-cifar10"} <= set(rows["cifar10"]["recipes"])
    again = run_cli("data", "fetch", "cifar10", "--from", use_fetched.archive, "--no-progress", env=_env(use_fetched))
    ok(again)
    assert "already" in again.stdout


def test_loading_gives_the_pixels_and_labels_exactly_as_written(use_fetched):
    expected = use_fetched.expected
    train = build_cifar(Cifar10Config())["images"]
    want = np.concatenate([expected[f"data_batch_{i}.bin"][0] for i in range(1, 6)])
    assert train.images.dtype == torch.uint8 and tuple(train.images.shape) == (5 * PER_BATCH, 3, 32, 32)
    assert torch.equal(train.images, torch.from_numpy(want).permute(0, 3, 1, 2))
    labels = np.concatenate([expected[f"data_batch_{i}.bin"][1][:, 0] for i in range(1, 6)])
    assert train.labels.tolist() == labels.tolist()
    assert train.class_names == CIFAR10_NAMES and train.fields == {"image": "image", "label": "label"}
    assert train.names[0] == "data_batch_1.bin#0" and train.names[-1] == f"data_batch_5.bin#{PER_BATCH - 1}"
    item = train[3]
    assert item["label"] == int(labels[3])
    assert torch.allclose(item["image"], torch.from_numpy(want[3]).permute(2, 0, 1).float() / 127.5 - 1)

    test = build_cifar(Cifar10Config(split="test"))["images"]
    assert torch.equal(test.images, torch.from_numpy(expected["test_batch.bin"][0]).permute(0, 3, 1, 2))
    assert test.labels.tolist() == expected["test_batch.bin"][1][:, 0].tolist()
    assert len(build_cifar(Cifar10Config(split="all"))["images"]) == 5 * PER_BATCH + TEST
    small = build_cifar(Cifar10Config(image_size=16, max_images=12))["images"]
    assert tuple(small.images.shape) == (12, 3, 16, 16) and small.labels.tolist() == labels[:12].tolist()
    assert Cifar10Config().list_classes() == CIFAR10_NAMES
    with pytest.raises(ValueError, match="max_images"):
        Cifar10Config(max_images=0)


def test_a_missing_copy_says_which_fetch_gets_it(cache):
    with pytest.raises(DataError) as info:
        build_cifar(Cifar10Config())
    assert "ganforge data fetch cifar10" in info.value.hint
    result = run_cli("train", "--recipe", "dcgan-cifar10", "--steps", 1, "-o", cache.parent / "run", *QUIET,
                     env={"GANFORGE_CACHE": str(cache)})
    assert "ganforge data fetch cifar10" in one_error_line(result)


def test_the_published_md5_is_checked(cache, tmp_path):
    archive = _tar(tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", cifar10_files()[0])
    result = run_cli("data", "fetch", "cifar10", "--from", archive, "--no-progress", env={"GANFORGE_CACHE": str(cache)})
    out = one_error_line(result)
    error = next(line for line in out.splitlines() if line.startswith("error:"))
    assert "MD5" in error and CIFAR10.md5 in out.replace("\n", "") and "cifar-10-binary.tar.gz" in error
    assert _datasets(cache) == []


@pytest.mark.parametrize("damage, named", [
    ("truncate", "data_batch_3.bin"),      # a record cut short
    ("grow", "test_batch.bin"),            # a file of the wrong size
    ("label", "data_batch_2.bin"),         # a label no class name stands for
])
def test_a_damaged_record_file_is_one_line_naming_it_and_installs_nothing(cache, tmp_path, monkeypatch, damage, named):
    files, _ = cifar10_files()
    if damage == "truncate":
        files[named] = files[named][:-5]
    elif damage == "grow":
        files[named] = files[named] + b"\0" * 100
    else:
        data = bytearray(files[named])
        data[3 * 3073] = 12  # record 3's label
        files[named] = bytes(data)
    archive = _tar(tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", files)
    _pinned(monkeypatch, Cifar10Config, CIFAR10, archive)
    result = run_cli("data", "fetch", "cifar10", "--from", archive, "--no-progress", env={"GANFORGE_CACHE": str(cache)})
    out = one_error_line(result)
    error = next(line for line in out.splitlines() if line.startswith("error:"))
    assert named in error, error
    assert ("record 3" in error and "label 12" in error) if damage == "label" else "3,073-byte records" in error
    assert _datasets(cache) == [] and archive.is_file()  # --from never deletes the user's file

    # The same file in a copy of your own (GANFORGE_DATA) is caught when the data is loaded.
    copy = tmp_path / "root" / "cifar10"
    copy.mkdir(parents=True)
    for name, data in files.items():
        (copy / name).write_bytes(data)
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "root"))
    with pytest.raises(DataError, match=named.replace(".", r"\.")):
        build_cifar(Cifar10Config(split="all"))


def test_an_archive_without_the_record_files_is_refused(cache, tmp_path, monkeypatch):
    files, _ = cifar10_files()
    del files["data_batch_4.bin"]
    archive = _tar(tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", files)
    _pinned(monkeypatch, Cifar10Config, CIFAR10, archive)
    result = run_cli("data", "fetch", "cifar10", "--from", archive, "--no-progress", env={"GANFORGE_CACHE": str(cache)})
    out = one_error_line(result).replace("\n", " ")
    assert "does not look like cifar10" in out and "data_batch_4.bin" in out
    assert _datasets(cache) == []


def test_download_from_a_local_server_resumes_after_a_dropped_connection(cache, tmp_path, monkeypatch):
    from test_fetch import Server

    archive = _tar(tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin", cifar10_files(seed=3)[0])
    _pinned(monkeypatch, Cifar10Config, CIFAR10, archive)
    server = Server()
    try:
        server.files["/cifar-10-binary.tar.gz"] = archive.read_bytes()
        server.mode["/cifar-10-binary.tar.gz"] = "drop"  # the first answer stops halfway
        url = server.url + "/cifar-10-binary.tar.gz"
        args = ("data", "fetch", "cifar10", "--url", url, "--no-progress")
        first = run_cli(*args, env={"GANFORGE_CACHE": str(cache)})
        assert "error:" in one_error_line(first)
        part = cache / "downloads" / "cifar10.tar.gz.part"
        assert 0 < part.stat().st_size < archive.stat().st_size
        have = part.stat().st_size
        ok(run_cli(*args, env={"GANFORGE_CACHE": str(cache)}))
        assert server.requests[-1][1] == f"bytes={have}-"  # resumed, not started over
    finally:
        server.close()
    dest = cache / "datasets" / "cifar10"
    manifest = json.loads((dest / ".ganforge-source.json").read_text())
    assert manifest["url"] == url and manifest["md5"] == md5(archive)
    assert not (cache / "downloads" / "cifar10.tar.gz").exists()  # the downloaded archive is not kept
    assert len(build_cifar(Cifar10Config())["images"]) == 5 * PER_BATCH


def test_cifar100_has_two_label_bytes_coarse_then_fine(cache, tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    files, expected = {}, {}
    for name, n in (("train.bin", 12), ("test.bin", 6)):
        files[name], hwc, labels = _records(rng, n, [20, 100])
        expected[name] = (hwc, labels)
    files["coarse_label_names.txt"] = "\n".join(f"super{i}" for i in range(20)).encode()
    files["fine_label_names.txt"] = "\n".join(f"class{i}" for i in range(100)).encode()
    archive = _tar(tmp_path / "cifar-100-binary.tar.gz", "cifar-100-binary", files)
    _pinned(monkeypatch, Cifar100Config, CIFAR100, archive)
    ok(run_cli("data", "fetch", "cifar100", "--from", archive, "--no-progress", env={"GANFORGE_CACHE": str(cache)}))
    fine = build_cifar(Cifar100Config())["images"]
    assert torch.equal(fine.images, torch.from_numpy(expected["train.bin"][0]).permute(0, 3, 1, 2))
    assert fine.labels.tolist() == expected["train.bin"][1][:, 1].tolist() and len(fine.class_names) == 100
    coarse = build_cifar(Cifar100Config(labels="coarse", split="test"))["images"]
    assert coarse.labels.tolist() == expected["test.bin"][1][:, 0].tolist()
    assert coarse.class_names[:2] == ("super0", "super1") and len(coarse.class_names) == 20


# --- the recipes ---------------------------------------------------------------------------------------
RECIPES = ("dcgan-cifar10", "cgan-cifar10", "wgan-gp-cifar10", "sagan-cifar10")
TINY = [*QUIET, "--set", "train.batch_size=4", "--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "log.every=1", "--set", "log.num_samples=20", "--set", "log.gif=false", "--set", "log.plots=false"]


def test_recipes_say_what_they_reproduce_and_run_100_epochs():
    from ganforge import get_registry, load_recipe

    registry = get_registry()
    for name in RECIPES:
        recipe = load_recipe(name, registry)
        assert "paper" in recipe.description and "CIFAR-10" in recipe.description, name
        assert recipe.data.name == "cifar10" and recipe.data.config.image_size == 32
        assert recipe.parts["generator"].config.image_size == 32
        batches = recipe.train.steps * getattr(recipe.algorithm.config, "d_steps", 1)
        epochs = batches * recipe.train.batch_size / 50_000
        assert 100 <= epochs < 100.3, (name, epochs)
        assert all(group.schedule.name == "cosine" for group in recipe.optim.values()), name
    policies = {n: [a.config.policy for a in load_recipe(n, registry).augment if a.name == "diffaug"] for n in RECIPES}
    assert policies["dcgan-cifar10"] == policies["cgan-cifar10"] == ["saturation,cutmix"]


@pytest.fixture(scope="module")
def runs(fetched, tmp_path_factory) -> dict[str, Path]:
    out = {}
    root = tmp_path_factory.mktemp("cifar-runs")
    for name in RECIPES:
        run = root / name
        ok(run_cli("train", "--recipe", name, "--steps", 2, "-o", run, *TINY, env=_env(fetched)))
        out[name] = run
    return out


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipe_trains_two_steps_on_the_fetched_data(runs, name):
    rows = [json.loads(line) for line in (runs[name] / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert [r["step"] for r in rows if "d_loss" in r] == [1, 2]
    assert (runs[name] / "checkpoints" / "step-00000002").is_dir()
    recipe = (runs[name] / "recipe.toml").read_text()
    assert 'name = "cifar10"' in recipe


def test_the_conditional_recipe_learns_the_ten_cifar_classes(runs, use_fetched, tmp_path):
    from ganforge import get_registry, load_for_inference

    loaded = load_for_inference(runs["cgan-cifar10"] / "checkpoints" / "step-00000002", get_registry())
    assert loaded.nets["generator"].num_classes == 10
    out = tmp_path / "cats.png"
    ok(run_cli("sample", "--checkpoint", runs["cgan-cifar10"], "--class", "cat", "--num", 4, "-o", out,
               env=_env(use_fetched)))
    assert out.is_file()


# --- ganforge eval --protocol cifar10 ---------------------------------------------------------------
def test_protocol_cifar10_scaled_down_says_what_it_changed(runs, use_fetched, tmp_path):
    out = tmp_path / "scores.json"
    args = ("eval", runs["dcgan-cifar10"], "--protocol", "cifar10", "--num", 20, "--extractor", "pixels",
            "--no-progress", "-o", out)
    result = run_cli(*args, env=_env(use_fetched))
    ok(result)
    data = json.loads(out.read_text())
    assert data["num_generated"] == 20 and data["num_real"] == 5 * PER_BATCH  # the training split
    assert data["real_source"] == "cifar10 (split = train)"
    assert set(data["scores"]) == {"pixels/fd", "pixels/kd", "pixels/kd_std", "pixels/kd_subset_size", "pixels/kd_subsets"}
    protocol = data["protocol"]
    assert protocol["name"] == "cifar10" and protocol["followed"] is False
    assert protocol["changed"] == ["--num 20 (protocol: 10000)", "--extractor pixels (protocol: inception-v3-fid)",
                                   "40 real images (protocol: 50,000)"]
    assert "protocol cifar10 NOT followed" in result.stdout.replace("\n", " ")
    again = run_cli(*args, env=_env(use_fetched))  # the real features come from the cache
    ok(again)
    assert json.loads(out.read_text())["real_cached"] is True


def test_protocol_defaults_and_real_set_follow_the_protocol_not_the_recipe(use_fetched):
    from ganforge import get_registry, load_recipe
    from ganforge.eval.protocols import get_protocol, plan, real_data_config

    protocol = get_protocol("cifar10", get_registry())
    followed = plan(protocol, num=None, metrics=None, extractor=None)
    assert (followed.num, followed.metrics, followed.extractor, followed.changed) == (10_000, ["fid", "kid"], "inception-v3-fid", [])
    registry = get_registry()
    recipe = load_recipe("dcgan-cifar10", registry, ['data.split="test"', "data.path=\"cifar10\""])
    name, config = real_data_config(protocol, registry, recipe)
    assert name == "cifar10" and config.split == "train" and config.image_size == 32
    other = load_recipe("dcgan-shapes", registry)  # trained on something else: the dataset's defaults
    assert real_data_config(protocol, registry, other)[1] == Cifar10Config(split="train", image_size=32)


def test_unknown_protocol_is_one_line_listing_the_known_ones(runs, use_fetched):
    out = one_error_line(run_cli("eval", runs["dcgan-cifar10"], "--protocol", "cifar11", env=_env(use_fetched)))
    assert "cifar11" in out and "cifar10" in out


# --- DiffAugment: cutmix and saturation ------------------------------------------------------------------
def _batch(b: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * 2 - 1


def test_cutmix_pastes_a_box_of_another_image_and_keeps_shape_and_gradient():
    from ganforge_augment.diffaug import cutmix

    x = _batch(16).requires_grad_(True)
    torch.manual_seed(0)
    out = cutmix(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    out.square().sum().backward()
    assert (x.grad.abs().sum(dim=(1, 2, 3)) > 0).all()  # every image feeds the output
    x = x.detach()
    partners = []
    for i in range(len(x)):
        changed = (out[i] != x[i]).any(dim=0)  # [H, W]
        if not changed.any():
            partners.append(None)
            continue
        rows, cols = changed.any(dim=1).nonzero().flatten(), changed.any(dim=0).nonzero().flatten()
        top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        assert changed[top:bottom, left:right].all() and changed.sum() == (bottom - top) * (right - left)  # a box
        box = out[i][:, top:bottom, left:right]
        source = [j for j in range(len(x)) if j != i and torch.equal(box, x[j][:, top:bottom, left:right])]
        assert len(source) == 1, "the box comes from exactly one other image, at the same place"
        partners.append(source[0])
    found = [p for p in partners if p is not None]
    assert len(set(found)) == len(found)  # each image lends its box to one other image only

    single = _batch(1)
    assert torch.equal(cutmix(single), single)


def test_cutmix_box_area_is_uniform_and_inside_the_image():
    from ganforge_augment.diffaug import cutmix

    x = _batch(2000, size=32, seed=1)
    torch.manual_seed(1)
    out = cutmix(x)
    area = (out != x).any(dim=1).float().mean(dim=(1, 2))  # share of each image replaced
    assert float(area.min()) >= 0 and float(area.max()) <= 1
    assert abs(float(area.mean()) - 0.5) < 0.03  # Beta(1, 1): uniform share, mean 1/2
    for low, high in ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.01)):
        share = float(((area >= low) & (area < high)).float().mean())
        assert 0.19 < share < 0.31, (low, high, share)


def test_cutmix_and_saturation_are_deterministic_under_a_seed_and_registered_policies():
    from ganforge_augment.diffaug import DiffAugment, DiffAugmentConfig

    aug = DiffAugment(DiffAugmentConfig(policy="saturation,cutmix"))
    assert aug.policies == ("saturation", "cutmix")
    x = _batch(8)
    torch.manual_seed(5)
    a = aug(x)
    torch.manual_seed(5)
    b = aug(x)
    torch.manual_seed(6)
    c = aug(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    y = x.clone().requires_grad_(True)
    aug(y).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_saturation_scales_colour_around_each_pixels_grey_and_color_still_includes_it():
    from ganforge_augment.diffaug import color, saturation

    x = _batch(64)
    torch.manual_seed(2)
    out = saturation(x)
    assert torch.allclose(out.mean(dim=1), x.mean(dim=1), atol=1e-5)  # the grey value is kept
    factor = ((out - out.mean(dim=1, keepdim=True)).flatten(1).norm(dim=1)
              / (x - x.mean(dim=1, keepdim=True)).flatten(1).norm(dim=1))
    assert float(factor.min()) >= 0 and float(factor.max()) <= 2 and float(factor.std()) > 0.2  # U[0, 2] per image
    # color = brightness, saturation, contrast, drawn in that order (as before saturation had its own policy)
    torch.manual_seed(3)
    got = color(x)
    torch.manual_seed(3)
    r = lambda lo, hi: torch.rand(x.shape[0], 1, 1, 1) * (hi - lo) + lo  # noqa: E731
    want = x + r(-0.5, 0.5)
    mean = want.mean(dim=1, keepdim=True)
    want = (want - mean) * r(0.0, 2.0) + mean
    mean = want.mean(dim=(1, 2, 3), keepdim=True)
    want = (want - mean) * r(0.5, 1.5) + mean
    assert torch.allclose(got, want, atol=1e-6)


def test_protocols_are_registered_by_plugins_and_checked_like_any_component():
    from ganforge import Protocol, get_registry, hookimpl
    from ganforge.core.errors import PluginCodeError
    from ganforge.eval.protocols import get_protocol
    from ganforge.testing import check_component, check_plugin, isolated_plugins

    assert check_component(get_registry(), "protocol", "cifar10") == "ok"

    class Good:
        @hookimpl
        def register_protocols(self, register):
            register("tiny", lambda: Protocol("tiny", "4 samples vs shapes", num=4, dataset="shapes"))

    class Broken:
        @hookimpl
        def register_protocols(self, register):
            register("broken", lambda: {"num": 4})

    assert check_plugin(isolated_plugins(("good", Good())))["protocol:tiny"] == "ok"  # shapes etc. from the built-ins
    broken = isolated_plugins(("broken", Broken()))
    with pytest.raises(AssertionError, match="protocol 'broken'.*built a dict, not a ganforge.eval.protocols.Protocol"):
        check_plugin(broken)
    with pytest.raises(PluginCodeError, match="not a ganforge.eval.protocols.Protocol"):
        get_protocol("broken", broken.registry)
