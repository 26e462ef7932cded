"""The loop's step-end work as callbacks, and the one owner of learning rates."""

from __future__ import annotations

import pytest
import torch

from _cli_helpers import SHAPES_TINY, metrics

from ganforge import Callback, get_registry, load_recipe
from ganforge.train import train
from ganforge.train.lr import LearningRates


def _sets(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]


def _recipe(*extra: str):
    return load_recipe("dcgan-shapes", get_registry(), [*_sets(SHAPES_TINY), "train.steps=4", *extra])


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_start(self, run):
        self.events.append(("start", run.step))

    def keep_step(self, run, logs):
        self.events.append(("keep", run.step))
        return True

    def on_step_end(self, run, logs):
        # Built-in callbacks ran first: this step's checkpoint (every 2 steps here) is already on disk.
        self.events.append(("end", run.step, sorted(logs), (run.run_dir / "checkpoints" / "latest").exists()))

    def on_train_end(self, run, finished):
        self.events.append(("finish", run.step, finished))


def test_a_script_callback_sees_every_step_after_the_built_in_ones(tmp_path):
    rec = Recorder()
    train(_recipe("log.checkpoint_every=2"), get_registry(), tmp_path / "run", progress=False, callbacks=[rec])
    assert rec.events[0] == ("start", 0)
    ends = [e for e in rec.events if e[0] == "end"]
    assert [e[1] for e in ends] == [1, 2, 3, 4]
    assert all(e[2] == ["d_loss", "g_loss"] for e in ends)
    assert [e[3] for e in ends] == [False, True, True, True]
    assert [e[1] for e in rec.events if e[0] == "keep"] == [0, 1, 2, 3]  # before the step counts
    assert rec.events[-1] == ("finish", 4, True)


class SkipFirstTwo(Callback):
    """Discards the first two steps it sees: the loop runs those step numbers again."""

    def __init__(self):
        self.discarded = 0

    def keep_step(self, run, logs):
        if self.discarded < 2:
            self.discarded += 1
            return False
        return True


def test_a_discarded_step_is_run_again_and_not_counted(tmp_path):
    skip = SkipFirstTwo()
    run_dir = train(_recipe(), get_registry(), tmp_path / "run", progress=False, callbacks=[skip])
    assert skip.discarded == 2
    assert [r["step"] for r in metrics(run_dir) if "d_loss" in r] == [1, 2, 3, 4]


def test_an_algorithm_adds_callbacks_through_its_callbacks_method(tmp_path, monkeypatch):
    from ganforge_gan import GANAlgorithm

    rec = Recorder()
    monkeypatch.setattr(GANAlgorithm, "callbacks", lambda self, run: [rec], raising=False)
    train(_recipe("train.steps=2"), get_registry(), tmp_path / "run", progress=False)
    assert [e[1] for e in rec.events if e[0] == "end"] == [1, 2]


class Schedule:
    def __init__(self, factors):
        self.factors = factors

    def factor(self, step, total):
        return self.factors[step]


def test_learning_rates_have_one_owner():
    lr = LearningRates({"generator": 2e-4, "discriminator": 1e-3},
                       {"generator": Schedule([1.0, 0.5]), "discriminator": Schedule([0.25, 0.1])}, total_steps=2)
    g = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=123.0)  # the optimiser plugin's rate is replaced
    d = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=7.0)
    lr.apply({"generator": g, "discriminator": d}, 0)
    assert g.param_groups[0]["lr"] == pytest.approx(2e-4) and d.param_groups[0]["lr"] == pytest.approx(2.5e-4)
    lr.scale = 0.5  # a NaN rollback
    lr.apply({"generator": g, "discriminator": d}, 1)
    assert g.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5 * 0.5) and d.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.1 * 0.5)
    assert lr.log_values(1) == {"lr_factor": 0.25}  # the first group's factor times the scale


def test_the_logged_factor_is_the_one_the_step_used(tmp_path):
    run_dir = train(_recipe("optim.generator.schedule.name=\"linear\"", "optim.generator.schedule.start=0.0"),
                    get_registry(), tmp_path / "run", progress=False)
    factors = [r["lr_factor"] for r in metrics(run_dir) if "lr_factor" in r]
    assert factors == pytest.approx([1.0, 0.75, 0.5, 0.25])  # linear decay from step 0 over 4 steps, 0-based
