"""RUN/MODEL_CARD.md: written at the end of training in the Hugging Face model-card layout (YAML
front matter, then the sections), with the data and its size, training time and hardware, a
memorisation warning on small data, the sample grid and the recipe; rewritten by `ganforge report`
with the scores it finds; a run folder missing pieces still gets a card, and a card that cannot be
written never fails training."""

from __future__ import annotations

import json
import shutil
import tomllib

import pytest
import yaml

from _cli_helpers import ok, run_cli
from _tiny_runs import COMMON, FAMILIES, has_data, tiny_run

SECTIONS = ["# Model card for", "## Model details", "## Uses", "### Direct use", "### Out-of-scope use",
            "## Bias, risks, and limitations", "## How to get started with the model", "## Training details",
            "### Training data", "### Training procedure", "### Speeds, sizes, times", "## Evaluation", "## Samples",
            "## Technical specifications"]


def _split(card: str) -> tuple[dict, str]:
    assert card.startswith("---\n"), card[:80]
    front, _, body = card[4:].partition("\n---\n")
    return yaml.safe_load(front), body


def _in_order(body: str, headings: list[str]) -> None:
    lines = body.splitlines()
    where = [next((i for i, line in enumerate(lines) if line.startswith(h)), -1) for h in headings]
    assert -1 not in where and where == sorted(where), dict(zip(headings, where))


def test_training_writes_the_card_and_the_hardware(tmp_path_factory):
    from ganforge.io.model_card import cpu_name

    run = tiny_run("dcgan-shapes", tmp_path_factory)
    front, body = _split((run / "MODEL_CARD.md").read_text(encoding="utf-8"))
    assert front["library_name"] == "ganforge" and front["pipeline_tag"] == "unconditional-image-generation"
    assert {"ganforge", "gan", "dcgan-shapes", "shapes"} <= set(front["tags"]) and front["ganforge_step"] == 2
    assert "model-index" not in front  # no scores yet
    _in_order(body, SECTIONS)
    assert "# Model card for dcgan-shapes" in body
    assert "- size: 16 images" in body and "**Memorisation risk:** it was trained on only 16 images" in body
    assert "- steps: 2 of 2, batch size 4" in body and "- training time: " in body
    assert "![samples at step 2](samples/step-00000002.png)" in body and (run / "samples" / "step-00000002.png").is_file()
    recipe = body.split("```toml\n", 1)[1].split("\n```", 1)[0]
    assert tomllib.loads(recipe) == tomllib.loads((run / "recipe.toml").read_text(encoding="utf-8"))
    hardware = json.loads((run / "hardware.json").read_text(encoding="utf-8"))
    assert hardware["device"] == "cpu" and hardware["threads"] == 1 and hardware["processes"] == 1
    assert cpu_name() in hardware["device_name"] and f"- hardware: {hardware['device_name']} (cpu)" in body
    assert "ganforge sample --checkpoint RUN" in body and "ganforge export --checkpoint RUN --format onnx" in body
    assert "| `generator` | " in body and "No scores yet" in body


def test_report_rewrites_the_card_with_the_scores(tmp_path_factory, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run("dcgan-shapes", tmp_path_factory), run)
    (run / "MODEL_CARD.md").unlink()
    (run / "eval").mkdir()
    scores = {"kid": 0.0421, "kid_std": 0.003, "memorisation_closer": 0.25, "memorisation_copies": 1.0}
    (run / "eval" / "step-00000002.json").write_text(json.dumps(
        {"step": 2, "scores": scores, "num_generated": 64, "num_real": 16, "extractor": "inception"}))
    (run / "checkpoints" / "best.json").write_text(json.dumps(
        {"checkpoint": "step-00000002", "step": 2, "score": "kid", "value": 0.0421, "higher_is_better": False}))
    result = run_cli("report", run)
    ok(result)
    assert f"model card: {run / 'MODEL_CARD.md'}" in result.output
    front, body = _split((run / "MODEL_CARD.md").read_text(encoding="utf-8"))
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in metrics}["kid"] == 0.0421
    assert "| 2 | kid | 0.0421 | eval/step-00000002.json |" in body
    assert "Best checkpoint: step 2 (kid 0.0421)" in body
    assert "Measured at step 2: 25% of the samples are closer to a training image" in body and "1 near-copies" in body


@pytest.mark.skipif(not has_data(), reason="no cat images in GANFORGE_DATA")
def test_a_translation_card(tmp_path_factory):
    _, body = _split((tiny_run("cyclegan-cats", tmp_path_factory) / "MODEL_CARD.md").read_text(encoding="utf-8"))
    assert "it translates images between domains" in body and "ganforge translate --checkpoint RUN" in body
    assert "- size: 245 images (`a`: 66, `b`: 179)" in body and "**Small data:**" in body
    assert "| `g_ab` | " in body and "| `g_ba` | " in body


def test_a_run_folder_missing_pieces_still_gets_a_card(tmp_path):
    from ganforge.io.model_card import write_model_card

    (tmp_path / "recipe.toml").write_text('name = "half"\n[algorithm]\nname = "gan"\n[data]\nname = "shapes"\n')
    front, body = _split(write_model_card(tmp_path).read_text(encoding="utf-8"))
    assert front["tags"][:3] == ["ganforge", "gan", "half"] and "(no checkpoint yet)" in body
    assert "size: not recorded" in body and "hardware: not recorded" in body and "No sample grid yet." in body


def test_a_card_that_cannot_be_written_never_fails_training(tmp_path, monkeypatch):
    import ganforge.train.model_card as callback

    def broken(run_dir):
        raise OSError("read-only file system")

    monkeypatch.setattr(callback, "write_model_card", broken)
    result = run_cli("train", "--recipe", "dcgan-shapes", "--steps", 1, "-o", tmp_path / "run", *COMMON,
                     *FAMILIES["dcgan-shapes"])
    ok(result)
    assert "warning: could not write MODEL_CARD.md: read-only file system" in result.output
    assert (tmp_path / "run" / "checkpoints" / "latest").is_file()
