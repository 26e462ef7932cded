"""Speed: how fast does ganforge train (and score) on this CPU, against the same work written by hand?

Every subcommand times steps the same way (``benchmarks.harness``: untimed warm-up steps, then
timed steps, images/s; several interleaved rounds, the median reported). The ganforge side is
always the real trainer (``ganforge.train.loop.train``, the same call as ``ganforge train``),
timed from its own metrics log; grids, checkpoints and scores are off in its timed steps.

  trainer    the trainer's overhead: the recipe's own networks, loss, augmentations and data in a
             plain hand-written loop vs the trainer, fp32 and bf16 autocast
  compare    side by side with plain-PyTorch re-implementations of two reference loops
             (``benchmarks/reference_loops.py``: pytorch/examples DCGAN, junyanz CycleGAN): images/s,
             whole-command wall time, FLOPs per image and the share of the CPU's matmul peak
  variants   where CPU step time can be won: one step of ganforge's networks with channels-last
             memory, fused / foreach Adam and bf16 autocast
  eval       evaluation speed with the standard FID network: feature extraction and a whole
             ``ganforge eval`` with a cold and a warm cache
  reference  one reference loop as a whole command (what ``compare`` times for the wall time)

Run from the repository root:

    OMP_NUM_THREADS=2 GANFORGE_DATA=../shared/data .venv/bin/python -m benchmarks.speed trainer \\
        --recipe dcgan-cats --steps 60 --warmup 10 --rounds 3
    GANFORGE_DATA=../shared/data OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.speed compare --json out.json
    .venv/bin/python -m benchmarks.speed compare --quick --only dcgan     # a few steps: does it all run?
    .venv/bin/python -m benchmarks.speed compare --report out.json      # the README block of saved runs
    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.speed variants dcgan 30 bf16
    OMP_NUM_THREADS=2 GANFORGE_DATA=../shared/data .venv/bin/python -m benchmarks.speed eval \\
        --checkpoint runs/dcgan-cats-XXXX --num 1000 [--bf16]
    .venv/bin/python -m benchmarks.speed reference dcgan --steps 40 --data ../shared/data --out /tmp/ref

Writes: tables and per-round numbers on stdout; with ``--json FILE`` every measurement, with the
date, torch version, CPU (model and AVX-512 / bf16 flags) and threads (``compare`` after each
configuration, so a later failure keeps what was measured); ``reference`` writes the networks and
a grid of the last images into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks import harness
from benchmarks.reference_loops import LOOPS, make_loop, save_outputs

# =========================================================================== trainer


def plain_step(recipe, registry, bf16: bool):
    """The loop a user would write by hand for the recipe's 'gan' algorithm (d_steps = 1): the
    recipe's networks, loss, augmentations, optimiser settings and in-memory data. Returns
    ``step() -> images``."""
    from ganforge.data.items import fetch_fields
    from ganforge.data.order import EpochSampler

    def build(role):
        part = recipe.parts[role]
        return registry.get(part.kind, part.name).build(part.config)

    torch.manual_seed(recipe.seed)
    G, D, loss = build("generator"), build("discriminator"), build("loss")
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

    def step() -> int:
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
        d_loss.item(), g_loss.item()  # the trainer logs these every step too
        return b

    return step


def run_trainer(args) -> None:
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe

    torch.set_num_threads(args.threads)
    registry = get_registry()
    recipe = load_recipe(args.recipe, registry, args.overrides)
    sets = [*args.overrides, f"train.threads={args.threads}"]
    measures = {}
    for bf16 in (False, True):
        tag = "bf16" if bf16 else "fp32"
        precision = f'train.mixed_precision="{"bf16" if bf16 else "no"}"'
        measures[f"plain {tag}"] = lambda bf16=bf16: harness.timed_rate(plain_step(recipe, registry, bf16), args.steps, args.warmup)
        measures[f"ganforge {tag}"] = lambda precision=precision: harness.trainer_rate(
            args.recipe, [*sets, precision], args.steps, args.warmup, args.threads)

    def report(r, results):
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items()), flush=True)

    results = harness.interleaved_rounds(measures, args.rounds, report=report)
    med = harness.medians(results)
    print(f"\nrecipe {args.recipe}, batch {recipe.train.batch_size}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"{args.rounds} rounds, {args.threads} threads, median images/s:")
    for tag in ("fp32", "bf16"):
        plain, ours = med[f"plain {tag}"], med[f"ganforge {tag}"]
        print(f"  {tag}: plain loop {plain:7.1f}   ganforge trainer {ours:7.1f}   overhead {100 * (plain / ours - 1):+5.1f}%")
    print(f"  bf16 / fp32 speed-up (ganforge): {med['ganforge bf16'] / med['ganforge fp32']:.2f}x")
    if args.json:
        meta = harness.run_meta(recipe=args.recipe, overrides=args.overrides, batch=recipe.train.batch_size,
                                threads=args.threads, steps=args.steps, warmup=args.warmup, rounds=args.rounds)
        harness.write_json(args.json, {"meta": meta, "images_per_s": results, "median_images_per_s": med})


# =========================================================================== compare


@dataclass(frozen=True)
class Setup:
    loop: str  # reference_loops kind
    image_size: int
    recipe: str
    sets: tuple[str, ...]  # ganforge overrides that match the reference
    batch: int
    grid: int  # log.num_samples: the final grid's size, close to what the reference saves


def _cyclegan(size: int) -> Setup:
    sets = (
        "generator.width=64", "generator.n_blocks=9", "generator.upsample=convtranspose",
        "generator.norm=instance", "generator.padding=reflect",
        "discriminator.width=64", "discriminator.n_layers=3", "discriminator.norm=instance",
        f"discriminator.image_size={size}", f"data.image_size={size}",
        "loss.name=lsgan", "algorithm.pool_size=50", "algorithm.cycle_weight=10.0", "algorithm.identity_weight=0.5",
        "train.batch_size=1", "train.lr_decay_start=1.0",
        "augment.diffaug=false", "augment.deluxe.scale=1.0", "augment.deluxe.flip=true",
    )
    return Setup("cyclegan", size, "cyclegan-cats", sets, batch=1, grid=6)


SETUPS = {
    "dcgan": Setup("dcgan", 64, "dcgan-cats-basic",
                   ("generator.width=64", "discriminator.width=64", "loss.name=vanilla"), batch=16, grid=16),
    "cyclegan64": _cyclegan(64),
    "cyclegan128": _cyclegan(128),
}
DEFAULT_STEPS = {"dcgan": 40, "cyclegan64": 12, "cyclegan128": 4}


def ganforge_sets(setup: Setup, threads: int, bf16: bool) -> list[str]:
    """The setup's overrides, threads, precision and final grid size (without steps and logging)."""
    return [*setup.sets, f"train.threads={threads}", f'train.mixed_precision="{"bf16" if bf16 else "no"}"',
            f"log.num_samples={setup.grid}"]


def ganforge_networks(setup: Setup) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The generator and discriminator ganforge builds for ``setup`` (for parameter checks)."""
    from ganforge.core.plugins import get_registry
    from ganforge.core.recipes import load_recipe

    registry = get_registry()
    recipe = load_recipe(setup.recipe, registry, list(setup.sets))
    parts = [recipe.parts[s] for s in ("generator", "discriminator")]
    return tuple(registry.get(p.kind, p.name).build(p.config) for p in parts)


def ganforge_flops(setup: Setup, threads: int, bf16: bool) -> float:
    """FLOPs per image of one ganforge step: a 2-step run minus a 1-step run (same start-up and end)."""
    from torch.utils.flop_counter import FlopCounterMode

    def count(steps: int) -> int:
        sets = [*ganforge_sets(setup, threads, bf16), *harness.quiet_sets(steps, 10)]
        with tempfile.TemporaryDirectory() as tmp, FlopCounterMode(display=False) as counter:
            harness.train_quietly(setup.recipe, sets, Path(tmp) / "run")
        return counter.get_total_flops()

    flops = count(2) - count(1)
    torch.set_num_threads(threads)
    return flops / setup.batch


def ganforge_command(setup: Setup, steps: int, threads: int, bf16: bool, out: Path) -> list[str]:
    exe = Path(sys.executable).with_name("ganforge")
    if not exe.exists():
        raise SystemExit(f"no ganforge command next to {sys.executable}; install ganforge in this environment")
    sets = [a for s in [*ganforge_sets(setup, threads, bf16), *harness.quiet_sets(steps, 10)] for a in ("--set", s)]
    return [str(exe), "train", "--recipe", setup.recipe, *sets, "--output-dir", str(out), "--no-progress"]


def reference_rate(setup: Setup, steps: int, warmup: int, bf16: bool, data: Path, workers: int) -> float:
    loop = make_loop(setup.loop, data, setup.image_size, bf16, workers)
    return harness.timed_rate(loop.step, steps, warmup)


def reference_flops(setup: Setup, bf16: bool, data: Path) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    loop = make_loop(setup.loop, data, setup.image_size, bf16)
    loop.step()  # first step outside: lazy initialisations
    with FlopCounterMode(display=False) as counter:
        images = loop.step()
    return counter.get_total_flops() / images


def reference_command(setup: Setup, steps: int, threads: int, bf16: bool, data: Path, workers: int, out: Path) -> list[str]:
    return harness.harness_command(
        "speed", "reference", setup.loop, "--image-size", setup.image_size, "--steps", steps, "--data", data,
        "--out", out, "--threads", threads, "--workers", workers, "--precision", "bf16" if bf16 else "fp32",
    )


def matmul_peak(dtype: torch.dtype, n: int = 3072, reps: int = 5) -> float:
    """Best GFLOP/s of an n x n x n matmul on the current threads."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def measure(name: str, setup: Setup, args, data: Path) -> dict:
    bf16 = args.precision == "bf16"
    measures = {
        "reference": lambda: reference_rate(setup, args.steps, args.warmup, bf16, data, args.workers),
        "ganforge": lambda: harness.trainer_rate(setup.recipe, ganforge_sets(setup, args.threads, bf16),
                                                 args.steps, args.warmup, args.threads),
    }

    def report(r, rates):
        print(f"  {name} round {r + 1}: reference {rates['reference'][-1]:.2f}, ganforge {rates['ganforge'][-1]:.2f} images/s",
              flush=True)

    rates = harness.interleaved_rounds(measures, args.rounds, alternate=True, report=report)
    result = {"setup": {"recipe": setup.recipe, "sets": list(setup.sets), "image_size": setup.image_size, "batch": setup.batch},
              "images_per_s": rates}
    result["flops_per_image"] = {"reference": reference_flops(setup, bf16, data), "ganforge": ganforge_flops(setup, args.threads, bf16)}
    if args.wall_steps:
        env = harness.child_env(OMP_NUM_THREADS=args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            ref_cmd = reference_command(setup, args.wall_steps, args.threads, bf16, data, args.workers, Path(tmp) / "ref")
            gf_cmd = ganforge_command(setup, args.wall_steps, args.threads, bf16, Path(tmp) / "gf")
            result["wall_s"] = {"steps": args.wall_steps, "reference": harness.wall_time(ref_cmd, env),
                                "ganforge": harness.wall_time(gf_cmd, env)}
    return result


def summarise(name: str, res: dict, peak: float) -> dict:
    med = harness.medians(res["images_per_s"])
    gflops = {k: res["flops_per_image"][k] * med[k] / 1e9 for k in med}
    return {
        "config": name, "median_images_per_s": med, "ratio": med["ganforge"] / med["reference"],
        "gflop_per_image": {k: v / 1e9 for k, v in res["flops_per_image"].items()},
        "gflop_per_s": gflops, "percent_of_peak": {k: 100 * v / peak for k, v in gflops.items()},
    }


def table(summaries: list[dict], results: dict) -> str:
    rows = ["| config | impl | images/s (median) | ganforge / reference | GFLOP per image | GFLOP/s | % of peak | whole command (s) |",
            "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        wall = results[s["config"]].get("wall_s", {})
        for who in ("reference", "ganforge"):
            ratio = f"{s['ratio']:.2f}x" if who == "ganforge" else ""
            w = f"{wall[who]:.1f} ({wall['steps']} steps)" if wall else "-"
            rows.append(f"| {s['config']} | {who} | {s['median_images_per_s'][who]:.2f} | {ratio} | "
                        f"{s['gflop_per_image'][who]:.2f} | {s['gflop_per_s'][who]:.1f} | {s['percent_of_peak'][who]:.1f} | {w} |")
    return "\n".join(rows)


def compare_report(path: Path) -> str:
    """A saved ``compare --json`` run as markdown: conditions, the table and every round's images/s."""
    saved = json.loads(Path(path).read_text())
    meta, results = saved["meta"], saved["results"]
    peaks = meta["peak_gflop_per_s"]
    rounds = "; ".join(
        f"{name} ({r['timed_steps']} timed steps): reference " + " / ".join(f"{v:.2f}" for v in r["images_per_s"]["reference"])
        + ", ganforge " + " / ".join(f"{v:.2f}" for v in r["images_per_s"]["ganforge"])
        for name, r in results.items()
    )
    return "\n".join([
        f"**{meta['precision']}**, measured {meta['date']}, {meta['cpu']}, torch {meta['torch']}, {meta['threads']} threads, "
        f"median of {meta['rounds']} rounds after {meta['warmup']} warm-up steps, reference DataLoader workers {meta['workers']}; "
        f"matmul peak on these threads: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s "
        f"(% of peak: of the {meta['precision']} one).",
        "", table(saved["summary"], results), "", f"Per round (images/s): {rounds}.", "",
    ])


def run_compare(args) -> None:
    if args.report:
        print("\n".join(compare_report(p) for p in args.report))
        return
    data = harness.data_root()
    torch.set_num_threads(args.threads)
    peaks = {"fp32": matmul_peak(torch.float32, args.peak_size), "bf16": matmul_peak(torch.bfloat16, args.peak_size)}
    meta = harness.run_meta(threads=args.threads, precision=args.precision, warmup=args.warmup, rounds=args.rounds,
                            workers=args.workers, peak_gflop_per_s=peaks)
    print(f"{meta['cpu']}, torch {torch.__version__}; matmul peak on {args.threads} threads: "
          f"fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s", flush=True)
    results, summaries, failed = {}, [], []
    for name in args.only or list(SETUPS):
        run_args = argparse.Namespace(**vars(args))
        run_args.steps = args.steps or DEFAULT_STEPS[name]
        run_args.wall_steps = run_args.steps if args.wall_steps is None else args.wall_steps
        t0 = time.perf_counter()
        try:
            results[name] = measure(name, SETUPS[name], run_args, data)
        except Exception:  # noqa: BLE001 - report it and go on with the next configuration
            traceback.print_exc()
            failed.append(name)
            continue
        results[name]["timed_steps"], results[name]["measuring_s"] = run_args.steps, time.perf_counter() - t0
        summaries.append(summarise(name, results[name], peaks[args.precision]))
        print(f"  {name}: {results[name]['measuring_s']:.0f} s of measuring\n{table(summaries[-1:], results)}", flush=True)
        if args.json:  # after every configuration: a later failure keeps what was measured
            harness.write_json(args.json, {"meta": meta, "results": results, "summary": summaries})
    print(f"\n{args.precision}, {args.threads} threads, median of {args.rounds} rounds "
          f"(% of the {args.precision} matmul peak, {peaks[args.precision]:.1f} GFLOP/s):\n")
    print(table(summaries, results))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


# =========================================================================== variants

# name, channels-last, Adam implementation, bf16 autocast
VARIANTS = [("base", False, "plain", False), ("channels_last", True, "plain", False), ("fused", False, "fused", False),
            ("foreach", False, "foreach", False), ("cl+fused", True, "fused", False)]
BF16_VARIANT = ("cl+fused+bf16", True, "fused", True)


def _adam(params, mode: str) -> torch.optim.Adam:
    impl = {"fused": {"fused": True}, "foreach": {"foreach": True}, "plain": {"foreach": False}}[mode]
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), **impl)


def _layout(channels_last: bool):
    return torch.channels_last if channels_last else torch.contiguous_format


def dcgan_variant(registry, channels_last: bool, mode: str, bf16: bool):
    """One step of ganforge's DCGAN at width 64, batch 16, BCE (the pytorch/examples setting) on a
    fixed random batch; returns ``step() -> images``."""
    import torch.nn.functional as F

    fmt = _layout(channels_last)
    G = registry.build("generator", "dcgan", {"width": 64, "noise_size": 100, "image_size": 64}).to(memory_format=fmt)
    D = registry.build("discriminator", "dcgan", {"width": 64, "image_size": 64}).to(memory_format=fmt)
    opt_g, opt_d = _adam(G.parameters(), mode), _adam(D.parameters(), mode)
    real = (torch.rand(16, 3, 64, 64) * 2 - 1).contiguous(memory_format=fmt)
    ones, zeros = torch.ones(16), torch.zeros(16)
    bce = F.binary_cross_entropy_with_logits

    def step() -> int:
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
        return 16

    return step


def cycle_variant(registry, size: int, channels_last: bool, mode: str, bf16: bool):
    """One step of two ResNet generators (9 blocks, width 64, ConvTranspose decoder) and two 3-layer
    PatchGANs, batch 1, LSGAN + cycle 10 + identity 5, at ``size`` pixels; returns ``step() -> images``."""
    fmt = _layout(channels_last)
    g_ab, g_ba = (registry.build("generator", "resnet", {"width": 64, "n_blocks": 9, "upsample": "convtranspose"})
                  .to(memory_format=fmt) for _ in range(2))
    d_a, d_b = (registry.build("discriminator", "patchgan", {"width": 64, "n_layers": 3, "image_size": size})
                .to(memory_format=fmt) for _ in range(2))
    opt_g = _adam([*g_ab.parameters(), *g_ba.parameters()], mode)
    opt_d = _adam([*d_a.parameters(), *d_b.parameters()], mode)
    a = (torch.rand(1, 3, size, size) * 2 - 1).contiguous(memory_format=fmt)
    b = a.flip(-1).contiguous(memory_format=fmt)

    def l1(x, y):
        return (x.float() - y).abs().mean()

    def step() -> int:
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
        return 1

    return step


def run_variants(args) -> None:
    from ganforge.core.plugins import get_registry

    registry = get_registry()
    variants = VARIANTS + ([BF16_VARIANT] if args.bf16 else [])
    torch.manual_seed(0)
    steps_of = {name: (dcgan_variant(registry, cl, mode, bf16) if args.family == "dcgan"
                       else cycle_variant(registry, int(args.family[5:]), cl, mode, bf16))
                for name, cl, mode, bf16 in variants}
    measures = {name: (lambda step=step: harness.timed_rate(step, args.steps, args.warmup)) for name, step in steps_of.items()}
    speeds = harness.interleaved_rounds(measures, args.rounds)
    for name, xs in speeds.items():
        print(f"{args.family} {name}: {statistics.median(xs):.2f} img/s  rounds {[round(x, 2) for x in xs]}", flush=True)
    if args.json:
        meta = harness.run_meta(family=args.family, threads=torch.get_num_threads(), steps=args.steps,
                                warmup=args.warmup, rounds=args.rounds)
        harness.write_json(args.json, {"meta": meta, "images_per_s": speeds, "median_images_per_s": harness.medians(speeds)})


# =========================================================================== eval


def extraction_speed(extractor, images: torch.Tensor, rounds: int = 2) -> float:
    """Images/s of the feature network over ``images`` (best of ``rounds`` passes, after a warm-up)."""
    extractor.load()
    extractor(images[:2])  # warm-up

    def one_pass() -> int:
        for chunk in images.split(extractor.batch_size):
            extractor(chunk)
        return len(images)

    return max(harness.timed_rate(one_pass, 1) for _ in range(rounds))


def run_eval(args) -> None:
    from ganforge.core.plugins import get_registry
    from ganforge.data.folders import load_image_folder
    from ganforge.eval.evaluator import Evaluator, default_metrics, evaluate_checkpoint
    from ganforge.io.inference import load_for_inference

    torch.set_num_threads(harness.env_threads(torch.get_num_threads()))
    registry = get_registry()
    report: dict = {"threads": torch.get_num_threads(), "torch": torch.__version__}

    real = load_image_folder(args.real, 64, progress=False)
    real = real.get_batch(torch.arange(len(real)))
    extractor = registry.build("feature_extractor", "inception-v3-fid")
    images = real[: args.speed_images]
    report["extract_images_per_s_fp32"] = round(extraction_speed(extractor, images), 2)
    print(json.dumps(report), flush=True)

    if args.bf16:
        from ganforge_metrics import maths

        with torch.inference_mode():
            f32 = torch.cat([extractor(c) for c in real.split(extractor.batch_size)])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            report["extract_images_per_s_bf16"] = round(extraction_speed(extractor, images), 2)
            with torch.inference_mode():
                bf = torch.cat([extractor(c).float() for c in real.split(extractor.batch_size)])
        half = len(real) // 2
        for name, f in (("fp32", f32), ("bf16", bf)):
            report[f"halves_fd_{name}"] = round(maths.fid(f[:half], f[half:]), 4)
            report[f"halves_kid_{name}"] = round(maths.kid(f[:half], f[half:])["kid"], 6)
        report["bf16_max_abs_feature_diff"] = round(float((bf - f32).abs().max()), 4)
        print(json.dumps(report), flush=True)

    if args.checkpoint:
        loaded = load_for_inference(args.checkpoint, registry)
        weights = {"weights": str(extractor.path)}  # the installed network, found before the cache moves
        with tempfile.TemporaryDirectory() as cache:
            os.environ["GANFORGE_CACHE"] = cache  # cold: nothing cached yet
            t0 = time.perf_counter()
            evaluator = Evaluator(registry, default_metrics(registry, False), "inception-v3-fid", weights, progress=False)
            evaluator.load()
            evaluator.set_real(real, args.real)
            result = evaluate_checkpoint(evaluator, loaded, num=args.num, seed=0)
            cold = time.perf_counter() - t0
            # Warm: the real features come from the cache; everything else is as above.
            t1 = time.perf_counter()
            again = Evaluator(registry, default_metrics(registry, False), "inception-v3-fid", weights, progress=False)
            again.set_real(real, args.real)
            warm_real = time.perf_counter() - t1
            assert again.real_cached
        report[f"eval_{args.num}_vs_{len(real)}_cold_cache_s"] = round(cold, 1)
        report[f"eval_{args.num}_vs_{len(real)}_warm_cache_s"] = round(cold - evaluator.real_seconds + warm_real, 1)
        report["scores"] = {k: round(v, 5) for k, v in result.scores.items()}
        report["step"] = result.step
        report["seconds"] = result.seconds
    print(json.dumps(report, indent=2))
    if args.json:
        harness.write_json(args.json, {"meta": harness.run_meta(), **report}, indent=2)


# =========================================================================== reference


def run_reference(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    loop = make_loop(args.loop, args.data, args.image_size, args.precision == "bf16", args.workers)
    for _ in range(args.steps):
        loop.step()
    save_outputs(loop, args.out)
    print(f"{args.loop} {args.image_size}px: {args.steps} steps in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


# =========================================================================== command line


def _at_least(p: argparse.ArgumentParser, args, names: tuple[str, ...], low: int) -> None:
    for key in names:
        value = getattr(args, key)
        if value is not None and value < low:
            word = "be at least 1" if low == 1 else "not be negative"
            p.error(f"--{key.replace('_', '-')} must {word}, got {value}")


def _help(text: str) -> dict:
    return {"description": text, "formatter_class": argparse.RawDescriptionHelpFormatter}


def parse_args(argv=None) -> argparse.Namespace:
    top = argparse.ArgumentParser(prog="python -m benchmarks.speed", **_help(__doc__))
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("trainer", help="the trainer against a plain loop over the recipe's networks (fp32, bf16)", **_help(
        "Training throughput: the ganforge trainer vs. a plain hand-written PyTorch loop. Both run the same recipe's\n"
        "networks, loss, augmentations, batch size and in-memory data, one after the other in this one process (so\n"
        "they share the machine's state), in fp32 and bf16 autocast, alternating over several rounds; the median of\n"
        "each is reported."))
    p.add_argument("--recipe", default="dcgan-cats")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--json", type=Path, help="write every round's images/s to this file")
    trainer = p

    p = sub.add_parser("compare", help="ganforge against two reference loops re-implemented in plain PyTorch", **_help(
        "Side-by-side training speed: ganforge vs. plain-PyTorch re-implementations of two reference loops\n"
        "(benchmarks/reference_loops.py: pytorch/examples DCGAN, junyanz CycleGAN), same architectures, settings and\n"
        "data, one after the other in this one process. For each configuration: steady-state images/s (median over\n"
        "rounds, after warm-up steps), the wall time of the whole command (start-up included) for a fixed number of\n"
        "steps, the FLOPs of one training step (FlopCounterMode: forward and backward of every network) and the\n"
        "achieved GFLOP/s as a share of this CPU's peak (a large matmul, same threads). Progress grids and\n"
        "checkpoints are off in the timed steps of both; the whole-command runs end with one checkpoint and one grid\n"
        "each."))
    p.add_argument("--only", action="append", choices=sorted(SETUPS), help="configurations to run (repeatable; default all)")
    p.add_argument("--steps", type=int, help="timed steps per round (default: dcgan 40, cyclegan64 12, cyclegan128 4)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before the timed ones")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--wall-steps", type=int, help="steps of the whole-command runs (0: skip them; default: as --steps)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--threads", type=int, default=harness.env_threads(2))
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the reference loops (0: decode in the training process)")
    p.add_argument("--quick", action="store_true", help="2 timed steps after 1 warm-up, 1 round, 1-step commands: a smoke test")
    p.add_argument("--peak-size", type=int, default=3072, help="side of the square matmuls that measure the peak")
    p.add_argument("--json", type=Path, help="write all measurements to this file")
    p.add_argument("--report", type=Path, nargs="+", metavar="JSON", help="measure nothing: print the README block of saved --json files")
    compare = p

    p = sub.add_parser("variants", help="one step of ganforge's networks in memory-layout / optimiser / bf16 variants", **_help(
        "Where CPU step time can be won: one training step of ganforge's own networks in variants, side by side.\n"
        "Families: dcgan (DCGAN generator/discriminator at width 64, batch 16, BCE: the pytorch/examples setting)\n"
        "and cycleNN (two ResNet generators with 9 blocks at width 64, ConvTranspose decoder, two 3-layer PatchGANs,\n"
        "batch 1, LSGAN + cycle 10 + identity 5, at NN x NN pixels). Variants: the default layout with the\n"
        "single-tensor Adam, channels-last memory, fused Adam, foreach Adam, channels-last + fused, and (with bf16)\n"
        "channels-last + fused under bf16 autocast. Each variant: warm-up steps, then STEPS timed steps, in\n"
        "interleaved rounds; the median images/s is printed."))
    p.add_argument("family", help="dcgan, or cycleNN for CycleGAN networks at NN x NN pixels (cycle64, cycle128)")
    p.add_argument("steps", type=int, nargs="?", default=40, help="timed steps per variant and round (default 40)")
    p.add_argument("bf16", nargs="?", choices=["bf16"], help="also channels-last + fused Adam under bf16 autocast")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, help="write every round's images/s to this file")
    variants = p

    p = sub.add_parser("eval", help="feature extraction and whole `ganforge eval` speed with the standard FID network", **_help(
        "Evaluation speed with the standard FID network: feature extraction (images/s) and a whole `ganforge eval`\n"
        "(N samples of a checkpoint against the recipe's real images, cold and warm cache). Without --checkpoint\n"
        "only the extraction speed is measured. --bf16 also extracts the real set under bf16 autocast and reports\n"
        "the speed and how far FD/KID of the two halves of the real set move. Needs the network\n"
        "(`ganforge metrics install`)."))
    p.add_argument("--checkpoint", help="a run or checkpoint to evaluate end to end")
    p.add_argument("--num", type=int, default=1000)
    p.add_argument("--speed-images", type=int, default=100, help="images timed for the extraction speed")
    p.add_argument("--real", default=os.path.join(os.environ.get("GANFORGE_DATA", "../shared/data"), "grumpify-cats/grumpy"))
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--json", type=Path, help="also write the report to this file")

    p = sub.add_parser("reference", help="train one reference loop for N steps and save what it saves (a whole command)", **_help(
        "Trains one of the plain-PyTorch reference loops (benchmarks/reference_loops.py) for a fixed number of\n"
        "steps and saves what the reference saves at the end of an epoch (the networks; a grid of images), for the\n"
        "whole-command wall time."))
    p.add_argument("loop", choices=sorted(LOOPS))
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--data", type=Path, required=True, help="the folder holding grumpify-cats/")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    reference = p

    args = top.parse_args(argv)
    if args.command == "trainer":
        _at_least(trainer, args, ("steps", "rounds", "threads"), 1)
        _at_least(trainer, args, ("warmup",), 0)
    elif args.command == "compare":
        _at_least(compare, args, ("steps", "rounds", "threads", "peak_size"), 1)
        _at_least(compare, args, ("warmup", "wall_steps", "workers"), 0)
        if args.quick:
            args.steps, args.warmup, args.rounds, args.peak_size = args.steps or 2, 1, 1, 1024
            args.wall_steps = 1 if args.wall_steps is None else args.wall_steps
    elif args.command == "variants":
        if not (args.family == "dcgan" or (args.family.startswith("cycle") and args.family[5:].isdigit())):
            variants.error(f"the family is dcgan or cycleNN (cycle64, cycle128), got {args.family!r}")
        _at_least(variants, args, ("steps", "rounds"), 1)
        _at_least(variants, args, ("warmup",), 0)
    elif args.command == "reference":
        _at_least(reference, args, ("steps",), 1)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    {"trainer": run_trainer, "compare": run_compare, "variants": run_variants, "eval": run_eval,
     "reference": run_reference}[args.command](args)


if __name__ == "__main__":
    main()
