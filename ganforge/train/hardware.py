"""What this CPU can do fast: native bf16, and a quick measurement when it cannot.

On a CPU without bf16 instructions (x86 without avx512_bf16 / amx_bf16, Arm without bf16), oneDNN
emulates bf16 and autocast training becomes many times slower than fp32 (a GAN training step ran 20x
slower on an AVX2-only EPYC), where CPUs with the instructions ran it 1.3-1.4x faster.
"""

from __future__ import annotations

import platform
import time
from functools import lru_cache

NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 (AVX-512 BF16, AMX) and Arm (FEAT_BF16)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def native_bf16() -> bool | None:
    """True/False when the CPU's flags say whether it has bf16 instructions; None when unknown."""
    flags = cpu_flags()
    if not flags:
        return None if platform.system() != "Linux" else False
    return bool(flags & NATIVE_BF16_FLAGS)


def bf16_slowdown(reps: int = 3) -> float:
    """How many times slower a small convolution step (forward + backward) runs under bf16 autocast
    than in fp32 on this CPU, measured now (about a second on a slow CPU)."""
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.Conv2d(32, 32, 3, padding=1))
    x = torch.randn(8, 32, 32, 32)

    def timed(bf16: bool) -> float:
        best = float("inf")
        for _ in range(reps + 1):  # the first round warms up oneDNN's kernels
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = conv(x)
            out.float().square().mean().backward()
            best = min(best, time.perf_counter() - t0)
        return best

    fp32 = timed(False)
    return timed(True) / fp32


def resolve_precision(requested: str, *, cuda: bool) -> tuple[str, str | None]:
    """The mixed precision a run trains in for ``train.mixed_precision = requested``, and a one-line note
    when "auto" chose it. "auto" means bf16 autocast on a CPU with native bf16 instructions (where a
    training step ran 1.3-1.5x faster than fp32) and fp32 everywhere else: CPUs that emulate bf16 run
    it many times slower, and on GPUs ganforge has not measured bf16 yet."""
    if requested != "auto":
        return requested, None
    if not cuda and native_bf16():
        return "bf16", ("mixed precision: bf16 (auto: this CPU has native bf16 instructions; "
                        "--mixed-precision no trains in fp32)")
    return "no", None


def bf16_warning() -> str | None:
    """One line for a bf16 run on a CPU without bf16 instructions (None when the CPU has them)."""
    if native_bf16() is not False:
        return None
    slower = bf16_slowdown()
    if slower < 1.2:
        return None  # emulation happens to be cheap here: nothing worth a warning
    return (f"bf16 is emulated on this CPU (no avx512_bf16/amx_bf16 instructions): a convolution step measured "
            f"{slower:.1f}x slower than fp32 just now; train in fp32 with --mixed-precision no "
            "(or --set train.mixed_precision=\"no\")")
