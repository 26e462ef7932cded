"""Two training steps of every built-in family's recipe at tiny sizes, trained once per test session
and shared by the export, model-card and demo tests (a folder under pytest's base temp)."""

from __future__ import annotations

from pathlib import Path

from _cli_helpers import DATA, QUIET, ok, run_cli

COMMON = [*QUIET, "--set", "log.every=1", "--set", "log.num_samples=4", "--set", "log.sample_every=1000",
          "--set", "log.gif=false", "--set", "log.plots=false"]
WIDTH8 = ["--set", "generator.width=8", "--set", "discriminator.width=8"]
SIZE32 = ["--set", "data.image_size=32"]

FAMILIES: dict[str, list[str]] = {
    "dcgan-shapes": ["--set", "train.batch_size=4", "--set", "data.num_images=16", *WIDTH8],
    "cgan-cats-fruit": ["--set", "train.batch_size=4", "--set", "data.max_per_class=4", *WIDTH8, *SIZE32],
    "cyclegan-cats": ["--set", "train.batch_size=2", *WIDTH8, *SIZE32],
    "pix2pix-edges2cats": ["--set", "train.batch_size=2", *WIDTH8, *SIZE32],
    "sagan-cats": ["--set", "train.batch_size=4", *WIDTH8, *SIZE32, "--set", "generator.attention_at=16",
                   "--set", "discriminator.attention_at=16"],
    "wgan-gp-cats": ["--set", "train.batch_size=4", *WIDTH8, *SIZE32, "--set", "algorithm.d_steps=1"],
    "stylegan2-cats": ["--set", "train.batch_size=4", *SIZE32, "--set", "generator.noise_size=16", "--set", "generator.w_dim=16",
                       *[x for net in ("generator", "discriminator")
                         for x in ("--set", f"{net}.channel_base=64", "--set", f"{net}.channel_max=16")]],
    "lightweight-cats": ["--set", "train.batch_size=4", "--set", "generator.width=4", "--set", "discriminator.width=4",
                         "--set", "generator.noise_size=16", *SIZE32],
}

NEEDS_DATA = {name for name in FAMILIES if name != "dcgan-shapes"}


def has_data() -> bool:
    return (DATA / "grumpify-cats" / "grumpy").is_dir() and (DATA / "apple2orange" / "apple").is_dir()


def tiny_run(name: str, tmp_path_factory) -> Path:
    """The run folder of ``name`` after two steps (trained on first use in this session)."""
    run = tmp_path_factory.getbasetemp() / "gf-tiny-runs" / name
    if not (run / "checkpoints" / "latest").is_file():
        ok(run_cli("train", "--recipe", name, "--steps", 2, "-o", run, *COMMON, *FAMILIES[name]))
    return run
