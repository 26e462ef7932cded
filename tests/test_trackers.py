"""`ganforge train --log-with tensorboard`: scalars and progress grids through Accelerate's trackers,
read back from the event files; the default uses no tracker and imports no tracker package."""

from __future__ import annotations

import subprocess
import sys

import pytest

from _cli_helpers import SHAPES_TINY, cli_env, ok, run_cli


def test_unknown_or_missing_tracker_is_one_clear_line(tmp_path):
    result = run_cli("train", "--recipe", "dcgan-shapes", "--steps", "2", *SHAPES_TINY, "--log-with", "tensorbored",
                     "--output-dir", tmp_path / "run")
    assert result.exit_code == 2 and "unknown tracker 'tensorbored'" in result.output
    assert not (tmp_path / "run").exists()


def test_default_run_uses_no_tracker(tmp_path):
    code = ("import sys; from ganforge.cli import main; sys.argv = ['ganforge', 'train', '--recipe', 'dcgan-shapes', "
            f"'--steps', '2', *{SHAPES_TINY!r}, '--output-dir', {str(tmp_path / 'run')!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('tensorboard', 'wandb', 'mlflow') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**__import__("os").environ,
                          **cli_env()}, timeout=300)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "logs").exists()


def test_tensorboard_gets_scalars_and_grids(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'ganforge[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    ok(run_cli("train", "--recipe", "dcgan-shapes", "--steps", "8", *SHAPES_TINY, "--set", "log.sample_every=4",
               "--log-with", "tensorboard", "--output-dir", run))
    events = list((run / "logs").rglob("events.out.tfevents.*"))
    assert events, sorted(p.relative_to(run) for p in run.rglob("*"))
    acc = EventAccumulator(str(events[0].parent), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"d_loss", "g_loss", "images_per_s"} <= set(tags["scalars"]), tags
    assert [e.step for e in acc.Scalars("d_loss")] == list(range(1, 9))
    assert "progress" in tags["images"]
    images = acc.Images("progress")
    assert [e.step for e in images] == [4, 8]
    assert images[-1].width > 64 and images[-1].height > 64
