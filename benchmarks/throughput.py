"""Training throughput: the ganforge trainer vs. a plain hand-written PyTorch loop.

Both run the same recipe's networks, loss, augmentations, batch size and in-memory data, one after
the other in this one process (so they share the machine's state), in fp32 and bf16 autocast,
alternating over several rounds; the median of each is reported.

    python benchmarks/throughput.py --recipe dcgan-cats --steps 60 --warmup 10 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganforge.core.plugins import get_registry
from ganforge.core.recipes import load_recipe
from ganforge.data.items import fetch_fields
from ganforge.data.order import EpochSampler
from ganforge.train.loop import METRICS_FILE, train


def build(recipe, registry, name_kind):
    part = recipe.parts[name_kind]
    return registry.get(part.kind, part.name).build(part.config)


def plain_loop(recipe, registry, steps: int, warmup: int, bf16: bool) -> float:
    """The loop a user would write by hand for the recipe's 'gan' algorithm (d_steps = 1)."""
    torch.manual_seed(recipe.seed)
    G, D = build(recipe, registry, "generator"), build(recipe, registry, "discriminator")
    loss = build(recipe, registry, "loss")
    data = registry.get("dataset", recipe.data.name).builder(recipe.data.config)["images"]
    augs = [registry.get("augmentation", p.name).builder(p.config) for p in recipe.augment]
    real_augs = [a for a in augs if a.stage == "real"]
    step_augs = [a for a in augs if a.stage != "real"]
    og, od = recipe.optim["generator"].optimizer.config, recipe.optim["discriminator"].optimizer.config
    opt_g = torch.optim.Adam(G.parameters(), lr=og.lr, betas=og.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=od.lr, betas=od.betas)
    b = recipe.train.batch_size
    sampler = EpochSampler(len(data), b, recipe.seed, "images")

    def aug(x):
        for a in step_augs:
            x = a(x)
        return x

    def step():
        real = fetch_fields(data, sampler.next_indices())["image"]
        with torch.no_grad():
            for a in real_augs:
                real = a(real)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            fake = G(torch.randn(b, G.noise_size))
            d_loss = loss.d_loss(D(aug(real)), D(aug(fake.detach())))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            g_loss = loss.g_loss(D(aug(fake)), None)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return d_loss.item(), g_loss.item()  # the trainer logs these every step too

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * b / (time.perf_counter() - t0)


def ganforge_loop(recipe_name, registry, steps: int, warmup: int, bf16: bool, overrides) -> float:
    """The real trainer; images/s from its own metrics log between step `warmup` and the end."""
    with tempfile.TemporaryDirectory() as tmp:
        sets = list(overrides) + [
            f"train.steps={warmup + steps}", f'train.mixed_precision="{"bf16" if bf16 else "no"}"',
            f"log.every={math.gcd(warmup, steps)}",
            "log.sample_every=1000000", "log.checkpoint_every=1000000", "log.gif=false", "log.plots=false",
        ]
        recipe = load_recipe(recipe_name, registry, sets)
        train(recipe, registry, Path(tmp) / "run", progress=False, console=_quiet())
        rows = [json.loads(l) for l in (Path(tmp) / "run" / METRICS_FILE).read_text().splitlines()]
        by_step = {r["step"]: r["time"] for r in rows}
        return steps * recipe.train.batch_size / (by_step[warmup + steps] - by_step[warmup])


def _quiet():
    from rich.console import Console

    return Console(file=open("/dev/null", "w"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="dcgan-cats")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    registry = get_registry()
    recipe = load_recipe(args.recipe, registry, args.overrides)
    results = {k: [] for k in ("plain fp32", "ganforge fp32", "plain bf16", "ganforge bf16")}
    for r in range(args.rounds):
        for bf16 in (False, True):
            tag = "bf16" if bf16 else "fp32"
            results[f"plain {tag}"].append(plain_loop(recipe, registry, args.steps, args.warmup, bf16))
            results[f"ganforge {tag}"].append(
                ganforge_loop(args.recipe, registry, args.steps, args.warmup, bf16, args.overrides + [f"train.threads={args.threads}"])
            )
            torch.set_num_threads(args.threads)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items()), flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nrecipe {args.recipe}, batch {recipe.train.batch_size}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"{args.rounds} rounds, {args.threads} threads, median images/s:")
    for tag in ("fp32", "bf16"):
        plain, ours = med[f"plain {tag}"], med[f"ganforge {tag}"]
        print(f"  {tag}: plain loop {plain:7.1f}   ganforge trainer {ours:7.1f}   overhead {100 * (plain / ours - 1):+5.1f}%")
    print(f"  bf16 / fp32 speed-up (ganforge): {med['ganforge bf16'] / med['ganforge fp32']:.2f}x")


if __name__ == "__main__":
    main()
