"""The conditional GAN family: labelled folders, a few training steps, sampling by class from the
checkpoint file alone, exact resume, and the errors a user sees."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from _cli_helpers import DATA, QUIET, image_size, metrics, ok, one_error_line, pixels, run_cli, tensors
from test_resume import assert_resume_is_exact
from test_train_dcgan import assert_generator_changed, initial_generator

pytestmark = pytest.mark.skipif(not (DATA / "apple2orange" / "apple").is_dir(), reason=f"no images in {DATA}")

RECIPE = "cgan-cats-fruit"
CLASSES = ["grumpy", "russian_blue", "apple", "orange"]
TINY = [*QUIET, "--set", "train.batch_size=4", "--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "data.max_per_class=6", "--set", "log.every=1", "--set", "log.num_samples=8",
        "--set", "log.sample_every=3", "--set", "log.checkpoint_every=3"]


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cgan") / "run"
    ok(run_cli("train", "--recipe", RECIPE, "--steps", 3, "-o", run, *TINY))
    return run


def _only_the_file(run: Path, tmp: Path) -> Path:
    """The model file copied alone into an empty folder: sampling must need nothing else."""
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(run / "checkpoints" / "step-00000003" / "model.safetensors", tmp / "model.safetensors"))


# --- the dataset --------------------------------------------------------------------------------------
def test_labelled_folders_from_a_list_and_from_a_root():
    from ganforge_cgan.data import LabelledFoldersConfig, build_labelled_folders

    listed = build_labelled_folders(LabelledFoldersConfig(
        folders=("grumpify-cats/grumpy", "apple2orange/apple"), image_size=32, max_per_class=5))["images"]
    assert listed.class_names == ("grumpy", "apple") and listed.fields == {"image": "image", "label": "label"}
    assert listed.labels.tolist() == [0] * 5 + [1] * 5
    assert listed.names[0].startswith("grumpy/") and listed.names[-1].startswith("apple/")

    root = build_labelled_folders(LabelledFoldersConfig(path="grumpify-cats", image_size=32, balance=True))["images"]
    assert root.class_names == ("grumpy", "russian_blue")  # the sub-folders, in natural order
    counts = torch.bincount(root.labels).tolist()
    assert counts == [179, 179] and root.class_sizes == {"grumpy": 179, "russian_blue": 66}  # balanced by repetition
    batch = root.get_fields(torch.tensor([0, len(root) - 1]))
    assert batch["label"].tolist() == [0, 1] and batch["image"].shape == (2, 3, 32, 32)


@pytest.mark.parametrize(("config", "expected"), [
    (dict(path="grumpify-cats", class_names=("a",)), "1 names for 2 class folders (grumpy, russian_blue)"),
    (dict(folders=("grumpify-cats/grumpy", "grumpify-cats/nope")), "class folder not found"),
    (dict(folders=("grumpify-cats/grumpy",)), "at least two classes, found 1 (grumpy)"),
    (dict(path="grumpify-cats", class_names=("x", "x")), "two class folders have the name 'x'"),
    (dict(), "needs a folder of class sub-folders, or a list of folders"),
])
def test_labelled_folders_errors(config, expected):
    from ganforge.core.errors import DataError
    from ganforge_cgan.data import LabelledFoldersConfig, build_labelled_folders

    with pytest.raises(DataError) as info:
        build_labelled_folders(LabelledFoldersConfig(image_size=32, **config))
    assert expected in info.value.message


# --- training -----------------------------------------------------------------------------------------
def test_cgan_trains_and_stores_class_names(cgan_run, tmp_path):
    rows = metrics(cgan_run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite([r["d_loss"], r["g_loss"]]).all() for r in rows)
    start = initial_generator(RECIPE, TINY + ["--set", "train.steps=3"], tmp_path / "probe")
    assert_generator_changed(start, cgan_run / "checkpoints" / "step-00000003" / "model.safetensors")
    from ganforge.io.inference import load_for_inference
    from ganforge.core.plugins import get_registry

    loaded = load_for_inference(cgan_run, get_registry())
    assert list(loaded.class_names()) == CLASSES and loaded.capabilities.classes
    # the progress grid: one row per class (8 samples, 4 classes -> 2 columns of 64x64)
    assert image_size(cgan_run / "samples" / "step-00000003.png") == (2 * 66 + 2, 4 * 66 + 2)


def test_sample_by_class_and_one_row_per_class_from_the_file_alone(cgan_run, tmp_path, monkeypatch):
    model = _only_the_file(cgan_run, tmp_path / "only")
    monkeypatch.chdir(tmp_path)
    env = {"GANFORGE_DATA": str(tmp_path / "no-data-here")}
    grid = tmp_path / "rows.png"
    ok(run_cli("sample", "--checkpoint", model, "--num", 12, "--output", grid, env=env))
    assert image_size(grid) == (3 * 66 + 2, 4 * 66 + 2)  # 4 rows (classes) x 3 columns
    rows = pixels(grid)
    # the same noise down each column: rows differ only by class, so they must differ
    assert not np.array_equal(rows[2:66], rows[68:132])

    grumpy, grumpy_by_number = tmp_path / "grumpy.png", tmp_path / "zero.png"
    ok(run_cli("sample", "--checkpoint", model, "--num", 4, "--class", "grumpy", "--output", grumpy, env=env))
    ok(run_cli("sample", "--checkpoint", model, "--num", 4, "--class", "0", "--output", grumpy_by_number, env=env))
    assert image_size(grumpy) == (2 * 66 + 2, 2 * 66 + 2)
    assert np.array_equal(pixels(grumpy), pixels(grumpy_by_number))
    apple = tmp_path / "apple.png"
    ok(run_cli("sample", "--checkpoint", model, "--num", 4, "--class", "apple", "--output", apple, env=env))
    assert not np.array_equal(pixels(grumpy), pixels(apple))


def test_interpolation_within_a_class_and_across_classes(cgan_run, tmp_path):
    from PIL import Image

    one, every = tmp_path / "orange.gif", tmp_path / "all.gif"
    ok(run_cli("sample", "--checkpoint", cgan_run, "--num", 4, "--class", "orange", "--output", tmp_path / "g.png",
               "--interpolate", one))
    ok(run_cli("sample", "--checkpoint", cgan_run, "--num", 4, "--output", tmp_path / "h.png", "--interpolate", every))
    with Image.open(one) as a, Image.open(every) as b:
        assert a.n_frames == b.n_frames > 1
        assert a.size == (64 * 4, 64 * 4) and b.size == (4 * 64 * 4, 64 * 4)  # all classes side by side


def test_unknown_class_lists_the_known_ones(cgan_run, tmp_path):
    out = one_error_line(run_cli("sample", "--checkpoint", cgan_run, "--class", "grumpi", "--output", tmp_path / "x.png"))
    assert "unknown class 'grumpi'" in out and "did you mean 'grumpy'" in out.lower()
    assert "grumpy, russian_blue, apple, orange" in out


def test_a_generator_with_too_few_classes_is_one_clear_line(tmp_path):
    out = one_error_line(run_cli("train", "--recipe", RECIPE, "--steps", 1, "-o", tmp_path / "run", *TINY,
                                 "--set", "generator.num_classes=2"))
    assert "knows 2 classes but the data has 4" in out and "generator.num_classes = 4" in out


def test_an_unconditional_discriminator_is_refused(tmp_path):
    out = one_error_line(run_cli("train", "--recipe", RECIPE, "--steps", 1, "-o", tmp_path / "run", *TINY,
                                 "--set", 'discriminator.name="dcgan"'))
    assert "class-conditional discriminator" in out


def test_cgan_resume_is_bit_exact_with_ema(tmp_path):
    args = [*TINY, "--set", "algorithm.ema=0.9", "--set", "algorithm.ema_start=0", "--set", "log.sample_every=2",
            "--set", "log.checkpoint_every=2", "--set", "log.gif=false", "--set", "log.plots=false"]
    assert_resume_is_exact(RECIPE, args, tmp_path, state_keys=("algo.0.ema.", "optim.discriminator."))
    model = tensors(tmp_path / "split" / "checkpoints" / "step-00000006" / "model.safetensors")
    assert any(k.startswith("generator_ema.") for k in model)


@pytest.mark.parametrize("conditioning", ["cbn", "embed"])
def test_both_networks_depend_on_the_label(conditioning):
    from ganforge_cgan.models import (ConditionalGenerator, ConditionalGeneratorConfig, ProjectionDiscriminator,
                                      ProjectionDiscriminatorConfig)

    torch.manual_seed(0)
    gen = ConditionalGenerator(ConditionalGeneratorConfig(num_classes=3, width=8, image_size=32, conditioning=conditioning))
    disc = ProjectionDiscriminator(ProjectionDiscriminatorConfig(num_classes=3, width=8, image_size=32))
    if conditioning == "cbn":  # class embeddings start at zero (plain BatchNorm): give them a value
        with torch.no_grad():
            for m in gen.modules():
                if hasattr(m, "gamma"):
                    m.gamma.weight.normal_(0, 0.5)
    gen.eval()
    z = torch.randn(2, gen.noise_size)
    a, b = gen(z, torch.tensor([0, 0])), gen(z, torch.tensor([1, 2]))
    assert a.shape == (2, 3, 32, 32) and not torch.allclose(a, b)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert disc(x, torch.tensor([0, 0])).shape == (2,)
    assert not torch.allclose(disc(x, torch.tensor([0, 0])), disc(x, torch.tensor([1, 2])))
