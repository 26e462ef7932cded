"""Where CPU step time can be won: one training step of ganforge's own networks in variants, side by side.

Families: `dcgan` (DCGAN generator/discriminator at width 64, batch 16, BCE: the pytorch/examples setting)
and `cycleNN` (two ResNet generators with 9 blocks at width 64, ConvTranspose decoder, two 3-layer
PatchGANs, batch 1, LSGAN + cycle 10 + identity 5, at NN x NN pixels). Variants: the default layout with
the single-tensor Adam, channels-last memory, fused Adam, foreach Adam, channels-last + fused, and (with a
third argument) channels-last + fused under bf16 autocast. Each variant: 3 warm-up steps, then STEPS
timed steps, in 3 interleaved rounds; the median images/s is printed.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/step_variants.py dcgan 30 bf16
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/step_variants.py cycle64 10 bf16
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F

from ganforge.core.plugins import get_registry

REGISTRY = get_registry()
# name, channels-last, Adam implementation, bf16 autocast
VARIANTS = [("base", False, "plain", False), ("channels_last", True, "plain", False), ("fused", False, "fused", False),
            ("foreach", False, "foreach", False), ("cl+fused", True, "fused", False)]


def adam(params, mode: str) -> torch.optim.Adam:
    impl = {"fused": {"fused": True}, "foreach": {"foreach": True}, "plain": {"foreach": False}}[mode]
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), **impl)


def layout(channels_last: bool):
    return torch.channels_last if channels_last else torch.contiguous_format


def dcgan_step(channels_last: bool, mode: str, bf16: bool):
    fmt = layout(channels_last)
    G = REGISTRY.build("generator", "dcgan", {"width": 64, "noise_size": 100, "image_size": 64}).to(memory_format=fmt)
    D = REGISTRY.build("discriminator", "dcgan", {"width": 64, "image_size": 64}).to(memory_format=fmt)
    opt_g, opt_d = adam(G.parameters(), mode), adam(D.parameters(), mode)
    real = (torch.rand(16, 3, 64, 64) * 2 - 1).contiguous(memory_format=fmt)
    ones, zeros = torch.ones(16), torch.zeros(16)
    bce = F.binary_cross_entropy_with_logits

    def step():
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            fake = G(torch.randn(16, 100))
            loss_d = bce(D(real).float().view(-1), ones) + bce(D(fake.detach()).float().view(-1), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss_g = bce(D(fake).float().view(-1), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    return step, 16


def cycle_step(size: int, channels_last: bool, mode: str, bf16: bool):
    fmt = layout(channels_last)
    g_ab, g_ba = (REGISTRY.build("generator", "resnet", {"width": 64, "n_blocks": 9, "upsample": "convtranspose"})
                  .to(memory_format=fmt) for _ in range(2))
    d_a, d_b = (REGISTRY.build("discriminator", "patchgan", {"width": 64, "n_layers": 3, "image_size": size})
                .to(memory_format=fmt) for _ in range(2))
    opt_g = adam([*g_ab.parameters(), *g_ba.parameters()], mode)
    opt_d = adam([*d_a.parameters(), *d_b.parameters()], mode)
    a = (torch.rand(1, 3, size, size) * 2 - 1).contiguous(memory_format=fmt)
    b = a.flip(-1).contiguous(memory_format=fmt)

    def l1(x, y):
        return (x.float() - y).abs().mean()

    def step():
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            fake_b, fake_a = g_ab(a), g_ba(b)
            loss_g = (((d_b(fake_b).float() - 1) ** 2).mean() + ((d_a(fake_a).float() - 1) ** 2).mean()
                      + 10 * (l1(g_ba(fake_b), a) + l1(g_ab(fake_a), b))   # cycle
                      + 5 * (l1(g_ba(a), a) + l1(g_ab(b), b)))            # identity
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss_d = sum(0.5 * (((d(real).float() - 1) ** 2).mean() + (d(fake.detach()).float() ** 2).mean())
                         for d, real, fake in ((d_b, b, fake_b), (d_a, a, fake_a)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    return step, 1


def main() -> None:
    if len(sys.argv) < 2 or not (sys.argv[1] == "dcgan" or sys.argv[1].removeprefix("cycle").isdigit()):
        raise SystemExit("usage: step_variants.py dcgan|cycle64|cycle128 [STEPS] [bf16]")
    family, steps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40
    variants = VARIANTS + ([("cl+fused+bf16", True, "fused", True)] if len(sys.argv) > 3 else [])
    torch.manual_seed(0)
    steps_of = {name: (dcgan_step(cl, mode, bf16) if family == "dcgan" else cycle_step(int(family[5:]), cl, mode, bf16))
                for name, cl, mode, bf16 in variants}
    speeds: dict[str, list[float]] = {name: [] for name in steps_of}
    for _ in range(3):  # interleaved rounds: drift of the machine hits every variant alike
        for name, (step, batch) in steps_of.items():
            for _ in range(3):
                step()
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            speeds[name].append(steps * batch / (time.perf_counter() - t0))
    for name, xs in speeds.items():
        print(f"{family} {name}: {statistics.median(xs):.2f} img/s  rounds {[round(x, 2) for x in xs]}", flush=True)


if __name__ == "__main__":
    main()
