"""bf16 on a CPU without bf16 instructions: detected from the CPU's flags, measured, and said in
one line at the start of training."""

from __future__ import annotations

import pytest

from _cli_helpers import CATS_TINY, ok, run_cli
from ganforge import hardware


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
    fp32 = run_cli("train", "--recipe", "dcgan-cats", "--steps", 2, "-o", tmp_path / "r2", *CATS_TINY,
                   "--set", "log.gif=false")
    ok(fp32)
    assert "bf16 is emulated" not in fp32.output
