"""The soak check (``python -m benchmarks.soak``) at a small size: a run SIGKILLed at random moments,
once while it trains and writes a checkpoint every step and once during a resume's start-up, and
resumed after each kill, ends exactly where one uninterrupted run ends: the same final networks, EMA,
optimiser moments, data order and RNG states, bit for bit, and the same logged values at every step."""

from __future__ import annotations

import json

from _cli_helpers import assert_same_tensors, metrics, subprocess_env

from benchmarks import soak

STEPS = 100
# The soak's tiny settings on the shapes recipe, plus augmentations that draw random numbers on every
# step (flips, DiffAugment) and an epoch of 16 steps, so the data order reshuffles several times.
SMALL = [*soak.SETTINGS, "data.num_images=64", "augment.deluxe.flip=true", "augment.diffaug.policy=translation,cutout"]
CLOCK = ("time", "images_per_s")


def logged_values(run) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in CLOCK} for row in metrics(run)]


def test_a_run_killed_and_resumed_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    lines: list[str] = []
    result = soak.soak(
        "dcgan-shapes", STEPS, kills=2, work=tmp_path, seed=1, settings=SMALL,
        steps_window=0.3,  # the first kill: within 0.3 s of that process's first new checkpoint
        startup_every=2, startup_window=(0.2, 1.5),  # the second: while the resuming process starts
        env=subprocess_env(), log=lines.append,
    )
    report = "\n".join(lines)
    assert result.problems == [], f"{result.problems}\n{report}"

    # Both kills landed, the first after training had written checkpoints, and the final process
    # resumed a part-trained run rather than training from scratch.
    first, second = result.kills
    assert not first.early and first.before == 0 and 1 <= first.after < STEPS, report
    assert second.early and second.before == first.after, report
    assert 0 < second.after < STEPS, report

    # The property itself, checked here independently of the soak's own comparison.
    for ref_file, soaked_file in zip(soak.final_files(result.reference, STEPS), soak.final_files(result.soaked, STEPS)):
        assert_same_tensors(ref_file, soaked_file)
    assert [row["step"] for row in metrics(result.soaked)] == list(range(1, STEPS + 1))
    assert logged_values(result.soaked) == logged_values(result.reference)
    assert not (result.soaked / ".ganforge.lock").exists()

    # The comparison is not vacuous: one step earlier, or one logged value changed, is caught.
    earlier = result.reference / "checkpoints" / f"step-{STEPS - 1:08d}" / "model.safetensors"
    assert soak.compare_tensors(earlier, soak.final_files(result.reference, STEPS)[0])
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    rows = metrics(result.soaked)
    rows[STEPS // 2]["g_loss"] += 1e-6
    (tampered / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert soak.compare_metrics(result.reference, tampered, STEPS) == [
        f"metrics.jsonl's logged values differ from the uninterrupted run's at steps [{STEPS // 2 + 1}]"]
