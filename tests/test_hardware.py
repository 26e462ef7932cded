"""bf16 on a CPU without bf16 instructions: detected from the CPU's flags, measured, and said in
one line at the start of training."""

from __future__ import annotations

import pytest
import torch

from _cli_helpers import CATS_TINY, ok, run_cli
from ganforge.train import hardware


@pytest.mark.parametrize("flags,native", [
    ({"avx2", "avx512f", "avx512_bf16"}, True),   # AVX-512 BF16 (Zen 4+, Cooper Lake+)
    ({"avx2", "amx_bf16", "amx_tile"}, True),      # AMX (Sapphire Rapids+)
    ({"fp", "asimd", "bf16"}, True),               # Arm FEAT_BF16
    ({"avx2", "fma", "avx512f", "avx512bw"}, False),  # AVX-512 without BF16: emulated
    ({"avx2", "fma"}, False),
])
def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, flags, native):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    assert hardware.native_bf16() is native


def test_this_cpus_flags_are_read():
    import platform

    if platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64"):
        assert "sse2" in hardware.cpu_flags()


def test_the_slowdown_is_measured_as_a_ratio():
    ratio = hardware.bf16_slowdown(reps=1)
    assert 0.05 < ratio < 200


def test_no_warning_where_bf16_is_native(monkeypatch):
    monkeypatch.setattr(hardware, "native_bf16", lambda: True)
    monkeypatch.setattr(hardware, "bf16_slowdown", lambda reps=3: pytest.fail("must not measure"))
    assert hardware.bf16_warning() is None


def test_emulated_bf16_training_warns_once_with_the_measured_slowdown(monkeypatch, tmp_path):
    monkeypatch.setattr(hardware, "native_bf16", lambda: False)
    monkeypatch.setattr(hardware, "bf16_slowdown", lambda reps=3: 19.7)
    result = run_cli("train", "--recipe", "dcgan-cats", "--steps", 2, "-o", tmp_path / "r", *CATS_TINY,
                     "--set", "log.gif=false", "--mixed-precision", "bf16")
    ok(result)
    lines = [line for line in result.output.splitlines() if "bf16 is emulated" in line]
    assert len(lines) == 1 and "19.7x slower than fp32" in lines[0] and "--mixed-precision no" in lines[0]
    # Autocast computes in bf16 but keeps the state in fp32: weights, normalisation statistics and the
    # optimisers' moments (python -m benchmarks.bf16 sim: what bf16 changes is the arithmetic, not the state)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "r" / "checkpoints" / "step-00000002" / "state.safetensors"), "pt") as fh:
        dtypes = {k: fh.get_tensor(k).dtype for k in fh.keys()}
    floats = {k for k, d in dtypes.items() if d.is_floating_point}
    assert {k.split(".")[0] for k in floats} >= {"net", "optim"}, sorted(floats)[:5]
    assert any("running_mean" in k for k in floats) and any("exp_avg_sq" in k for k in floats)
    assert all(dtypes[k] == torch.float32 for k in floats), {k: dtypes[k] for k in floats if dtypes[k] != torch.float32}
    fp32 = run_cli("train", "--recipe", "dcgan-cats", "--steps", 2, "-o", tmp_path / "r2", *CATS_TINY,
                   "--set", "log.gif=false")
    ok(fp32)
    assert "bf16 is emulated" not in fp32.output


@pytest.mark.parametrize("requested,cuda,native,expected", [
    ("auto", False, True, "bf16"),   # native bf16 CPU: measured as good per step and faster
    ("auto", False, False, "no"),    # emulated bf16 is many times slower: never the default there
    ("auto", False, None, "no"),     # flags unknown: fp32
    ("auto", True, True, "no"),      # GPUs: bf16's effect on quality not measured yet
    ("bf16", False, False, "bf16"),  # an explicit choice is kept (and warned about elsewhere)
    ("no", False, True, "no"),
    ("fp16", True, False, "fp16"),
])
def test_auto_precision_is_bf16_only_on_cpus_with_native_bf16(monkeypatch, requested, cuda, native, expected):
    monkeypatch.setattr(hardware, "native_bf16", lambda: native)
    precision, note = hardware.resolve_precision(requested, cuda=cuda)
    assert precision == expected
    assert (note is not None) == (requested == "auto" and expected == "bf16")


def test_auto_precision_says_what_it_chose_and_a_resume_elsewhere_says_what_changed(monkeypatch, tmp_path):
    from safetensors import safe_open

    run = tmp_path / "r"
    args = ("--recipe", "dcgan-cats", "--steps", 4, *CATS_TINY, "--set", "log.gif=false",
            "--set", "log.checkpoint_every=2", "--mixed-precision", "auto")
    monkeypatch.setattr(hardware, "native_bf16", lambda: True)
    first = run_cli("train", *args, "-o", run, "--stop-at", 2)
    ok(first)
    assert sum("mixed precision: bf16 (auto" in line for line in first.output.splitlines()) == 1
    with safe_open(str(run / "checkpoints" / "step-00000002" / "state.safetensors"), "pt") as fh:
        assert fh.metadata()["mixed_precision"] == "bf16"
    # The same run continued on a CPU without native bf16: auto now means fp32, and it says so.
    monkeypatch.setattr(hardware, "native_bf16", lambda: False)
    second = run_cli("train", "--resume", run, "--set", "log.gif=false")
    ok(second)
    assert "mixed precision: bf16" not in second.output
    changed = [line for line in second.output.splitlines() if "trained in bf16 until step 2" in line]
    assert len(changed) == 1 and "continues in fp32" in changed[0]
    with safe_open(str(run / "checkpoints" / "step-00000004" / "state.safetensors"), "pt") as fh:
        assert fh.metadata()["mixed_precision"] == "no"
