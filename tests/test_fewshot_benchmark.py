"""The few-shot harness (``python -m benchmarks.fewshot``) end to end at a toy size: train for a few
seconds, score every checkpoint, pick the best, score it with memorisation, and write the table and
the KID-against-time figure; and the saved results in benchmarks/results still make their table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from _cli_helpers import REPO, subprocess_env

from benchmarks import fewshot


def test_fewshot_benchmark_trains_for_a_wall_time_and_writes_its_table(tmp_path):
    out = tmp_path / "fewshot"
    cmd = [sys.executable, "-m", "benchmarks.fewshot", "--recipes", "dcgan-shapes", "--minutes", "0.25",
           "--num", "40", "--curve-num", "40", "--checkpoint-every", "10", "--extractor", "pixels", "--out", str(out),
           "--docs", str(tmp_path / "docs"), "--set", "train.threads=1", "--set", "train.batch_size=8",
           "--set", "data.num_images=64", "--set", "log.sample_every=1000"]
    # from another folder: the harness needs only the repository on PYTHONPATH
    env = subprocess_env(PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads((out / "fewshot.json").read_text())
    result = data["results"]["dcgan-shapes"]
    assert 10 <= result["wall_s"] < 120  # stopped by the wall-time budget, not by the recipe's length
    assert len(result["curve"]) >= 2 and result["picked_step"] in [p["step"] for p in result["curve"]]
    assert result["num_generated"] == 40 and "memorisation_closer" in result["scores"]
    assert result["images_per_s"] > 0 and data["cpu"]["cores"] >= 1
    table = (out / "table.md").read_text()
    assert "`dcgan-shapes`" in table and "near-copies" in table
    for name in ("fewshot-kid-vs-time.png", "fewshot-dcgan-shapes.jpg", "fewshot-dcgan-shapes-nearest.png"):
        assert (tmp_path / "docs" / name).stat().st_size > 1000


def test_saved_results_make_the_table_and_figure_again(tmp_path):
    saved = REPO / "benchmarks" / "results" / "fewshot.json"
    shutil.copy(saved, tmp_path / "fewshot.json")
    fewshot.main(["--report", "--out", str(tmp_path)])
    table = (tmp_path / "table.md").read_text()
    for name in json.loads(saved.read_text())["results"]:
        assert f"| `{name}` |" in table
    assert "| `lightweight-cats` | 5,593 | 74.9 | 5,593 (19.9) | 41.5 | 0.018 ± 0.001 |" in table
    assert (tmp_path / "kid-vs-time.png").stat().st_size > 10_000
