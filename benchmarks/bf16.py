"""bf16: what does bf16 autocast do to GAN training on a CPU, and does it cost quality?

  sim train ARGS  ``ganforge train ARGS`` with bf16's roundings simulated on fp32 kernels (for CPUs
                  that emulate bf16, where a real bf16 run is 14-20x slower); ``--keep-fp32 last``
                  (or ``first``, ``first,last``) leaves each network's last (first) convolution or
                  linear layer in fp32
  sim check CKPT  how faithful the simulation is on a trained checkpoint: its error against fp32
                  beside real autocast's, and for scale the gradient of another batch
  error [CKPT]    where bf16 autocast loses precision: every layer's local error, and end to end
                  (images, D outputs, losses, gradients) with some layers kept in fp32
  quality         fp32 and bf16 (or simulated bf16) runs of one recipe, scored by KID at equal
                  steps and at equal training time

Run from the repository root:

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.bf16 sim train --recipe dcgan-cats -o runs/sim
    .venv/bin/python -m benchmarks.bf16 sim check runs/bf16q/fp32-s0/checkpoints/step-00006400
    .venv/bin/python -m benchmarks.bf16 error runs/full/dcgan-cats/checkpoints/step-00006400
    # on a CPU with native bf16 (real autocast), alone on the machine
    .venv/bin/python -m benchmarks.bf16 quality --train --out runs/bf16q --seeds 0 1 --steps 6400 --bf16-steps 9600
    # on any CPU: simulated bf16, equal time from a speed ratio measured on a native-bf16 CPU
    .venv/bin/python -m benchmarks.bf16 quality --train --simulate --speedup 1.30 --out runs/bf16q \\
        --seeds 0 1 --steps 8000 --bf16-steps 8000 --fp32-steps 6400 --figure docs/images/bf16-vs-fp32-kid.png

Writes: ``sim train`` a normal run folder (recorded precision "no"); ``sim check`` and ``error``
markdown tables on stdout; ``quality --train`` the runs ``fp32-sN`` and ``bf16-sN`` / ``sim-sN``
in ``--out``, then (with or without ``--train``) tables on stdout and, with ``--figure``, the KID
curves as a PNG.

The simulation. The rounding does not depend on the CPU: autocast casts a convolution's (or linear
layer's) input, weight and bias to bf16, the kernel accumulates in fp32 and rounds its output to
bf16; in the backward pass the incoming gradient is bf16 and the input and weight gradients come
out rounded to bf16 (the weight's then goes to the fp32 parameter). This module reproduces exactly
those roundings around the fp32 kernels:

    y = round(conv(round(x), round(w), round(b)))      backward: every gradient crossing a round() is rounded

and rounds each network's output, as autocast leaves it bf16 (the trainer's wrapper then makes it
fp32). What it does not reproduce: the order of fp32 accumulation inside the kernels, the rounding
of element-wise ops between two convolutions (normalisation, activations, additions), whose results
the next convolution rounds anyway, and any extra rounding inside the bf16 kernels. Measured against
real autocast on an AVX2 CPU (oneDNN's emulated bf16; tests/test_bf16_sim.py): a convolution's
forward pass is bit-identical; in transposed convolutions and in the input and weight gradients
real autocast rounds once more, so the simulation's error there is 0.6-0.85x real autocast's.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import threading
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import harness

# =========================================================================== simulation

_active = threading.local()
_ORIGINAL = {"conv2d": F.conv2d, "conv_transpose2d": F.conv_transpose2d, "linear": F.linear}


class _Round(torch.autograd.Function):
    """Round to bf16 (kept as fp32) in the forward pass, and round the gradient in the backward pass."""

    @staticmethod
    def forward(ctx, x):
        return x.to(torch.bfloat16).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(torch.bfloat16).to(grad.dtype)


def bf16_round(x):
    return _Round.apply(x) if torch.is_tensor(x) and x.is_floating_point() else x


def _simulated(name):
    original = _ORIGINAL[name]

    def op(input, weight, bias=None, *args, **kwargs):
        if not getattr(_active, "on", False):
            return original(input, weight, bias, *args, **kwargs)
        return bf16_round(original(bf16_round(input), bf16_round(weight), bf16_round(bias), *args, **kwargs))

    return op


def install() -> None:
    """Route F.conv2d / F.conv_transpose2d / F.linear through the simulation (active only inside
    a network wrapped by :func:`simulate`)."""
    for name in _ORIGINAL:
        setattr(F, name, _simulated(name))


def uninstall() -> None:
    for name, original in _ORIGINAL.items():
        setattr(F, name, original)


@contextlib.contextmanager
def active(on: bool = True):
    """Inside: the patched ops simulate bf16 (on) or run plain fp32 (off)."""
    before = getattr(_active, "on", False)
    _active.on = on
    try:
        yield
    finally:
        _active.on = before


LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)


def _leaf_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, LAYERS)]


def keep_fp32(net: nn.Module, which: set[str]) -> None:
    """Run the first and/or last convolution or linear layer of `net` outside the simulation."""
    layers = _leaf_layers(net)
    chosen = ([layers[0]] if "first" in which else []) + ([layers[-1]] if "last" in which else [])
    for layer in chosen:
        forward = layer.forward

        def fp32_forward(*args, _forward=forward, **kwargs):
            with active(False):
                return _forward(*args, **kwargs)

        layer.forward = fp32_forward


def simulate(net: nn.Module, keep: set[str] = frozenset()) -> nn.Module:
    """Make `net` compute as under bf16 autocast: its layers' roundings, and a bf16-rounded output."""
    install()
    keep_fp32(net, keep)
    forward = net.forward

    def bf16_forward(*args, **kwargs):
        with active():
            out = forward(*args, **kwargs)
        # autocast leaves the output in bf16 (unless the last layer ran in fp32 by choice)
        return out if "last" in keep else bf16_round(out)

    net.forward = bf16_forward
    return net


def sim_train(argv: list[str]) -> None:
    """`ganforge train ARGS` with every network of the run simulated."""
    argv = list(argv)
    keep: set[str] = set()
    if "--keep-fp32" in argv:
        i = argv.index("--keep-fp32")
        keep = set(argv[i + 1].split(",")) if i + 1 < len(argv) else set()
        del argv[i : i + 2]
        if not keep:
            sys.exit("--keep-fp32 takes first, last or first,last")
    if not keep <= {"first", "last"}:
        sys.exit("--keep-fp32 takes first, last or first,last")
    from ganforge.cli import main
    from ganforge.train.session import TrainRun

    build = TrainRun.build

    def simulated_build(self):
        build(self)
        for net in self.nets.values():
            simulate(net, keep)
        print(f"bf16 simulated (fp32 kernels with bf16 rounding){'; fp32: ' + ','.join(sorted(keep)) if keep else ''}",
              flush=True)

    TrainRun.build = simulated_build
    sys.argv = ["ganforge", "train", *argv]
    main()


# =========================================================================== one step, fp32 vs bf16


def load(ckpt: Path):
    """The run's recipe (as TOML tables) and its generator and discriminator with the checkpoint's weights."""
    import tomllib

    from safetensors.torch import load_file

    from ganforge.core.plugins import get_registry
    from ganforge.io.checkpoint import split_prefix

    recipe = tomllib.loads((ckpt.parents[1] / "recipe.toml").read_text(encoding="utf-8"))
    state = load_file(str(ckpt / "state.safetensors"))
    nets = {}
    for role in ("generator", "discriminator"):
        options = {k: v for k, v in recipe[role].items() if k != "name"}
        net = get_registry().build(role, recipe[role]["name"], options)
        net.load_state_dict(split_prefix(state, f"net.{role}"))
        nets[role] = net.train()
    return recipe, nets


def real_batch(recipe, n: int) -> torch.Tensor:
    from ganforge.data.folders import load_image_folder, resolve_data_path
    from ganforge_datasets.catalog import BUNDLED_ROOT

    data = recipe["data"]
    folder = resolve_data_path(data["path"], also=(BUNDLED_ROOT,))
    ds = load_image_folder(folder, data.get("image_size", 64), progress=False, max_images=n)
    return ds.images[:n].float() / 127.5 - 1


def forward_pass(G, D, z, real, bf16: bool):
    """One LSGAN step's forward and backward; returns images, D outputs, losses and gradients."""
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        fake = G(z)
        d_real, d_fake = D(real), D(fake.detach())
    loss_d = F.mse_loss(d_real.float(), torch.ones_like(d_real, dtype=torch.float)) + \
        F.mse_loss(d_fake.float(), torch.zeros_like(d_fake, dtype=torch.float))
    loss_d.backward()
    grads_d = {n: p.grad.clone() for n, p in D.named_parameters()}
    D.zero_grad(set_to_none=True)
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        d_gen = D(fake)
    loss_g = F.mse_loss(d_gen.float(), torch.ones_like(d_gen, dtype=torch.float))
    loss_g.backward()
    grads_g = {n: p.grad.clone() for n, p in G.named_parameters()}
    return fake.detach().float(), d_real.detach().float(), loss_d.item(), loss_g.item(), grads_d, grads_g


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def grad_stats(bf, ref) -> tuple[float, float, str]:
    errors = {n: rel(bf[n], ref[n]) for n in ref}
    cos = F.cosine_similarity(torch.cat([bf[n].flatten() for n in ref]), torch.cat([ref[n].flatten() for n in ref]), 0)
    worst = max(errors, key=errors.get)
    total = rel(torch.cat([bf[n].flatten() for n in ref]), torch.cat([ref[n].flatten() for n in ref]))
    return total, cos.item(), f"{worst} {errors[worst]:.3f}"


def sim_check(ckpt: str, n: int = 16) -> None:
    """Simulation vs real bf16 autocast vs fp32 on one LSGAN step of a trained checkpoint."""
    torch.manual_seed(0)
    recipe, nets = load(Path(ckpt))
    G, D = nets["generator"], nets["discriminator"]
    reals = real_batch(recipe, 2 * n)
    real, other_real = reals[:n], reals[n:]
    z, other_z = torch.randn(n, G.noise_size), torch.randn(n, G.noise_size)
    snapshot = {k: copy.deepcopy(net.state_dict()) for k, net in nets.items()}

    def run(mode: str):
        for k, net in nets.items():
            net.load_state_dict(snapshot[k])
        g, d = G, D
        if mode == "sim":
            g, d = simulate(copy.deepcopy(G)), simulate(copy.deepcopy(D))
        if mode == "another batch":  # how much the gradient changes anyway from one batch to the next
            return forward_pass(g, d, other_z, other_real, bf16=False)
        return forward_pass(g, d, z, real, bf16=(mode == "autocast"))

    out = {mode: run(mode) for mode in ("fp32", "autocast", "sim", "another batch")}
    print(f"checkpoint {ckpt}, batch {n}: one LSGAN step, same weights, noise and images\n")
    print("| compared | G images rel. err | D(real) rel. err | D grad rel. err (cos) | G grad rel. err (cos) | D loss | G loss |")
    print("|---|---|---|---|---|---|---|")
    for a, b in (("autocast", "fp32"), ("sim", "fp32"), ("sim", "autocast"), ("another batch", "fp32")):
        x, y = out[a], out[b]
        gd, cd, _ = grad_stats(x[4], y[4])
        gg, cg, _ = grad_stats(x[5], y[5])
        same_inputs = a != "another batch"  # images and outputs of other inputs are not comparable
        images = f"{rel(x[0], y[0]):.4f} | {rel(x[1], y[1]):.4f}" if same_inputs else "- | -"
        print(f"| {a} vs {b} | {images} | {gd:.4f} ({cd:.5f}) | "
              f"{gg:.4f} ({cg:.5f}) | {x[2]:.5f} / {y[2]:.5f} | {x[3]:.5f} / {y[3]:.5f} |")


# =========================================================================== error per layer


def keep_module_fp32(module: nn.Module):
    """Run `module` outside autocast on fp32 inputs (its output is fp32); returns the undo."""
    forward = module.forward

    def fp32_forward(*args):
        with torch.autocast("cpu", enabled=False):
            return forward(*[a.float() if torch.is_tensor(a) else a for a in args])

    module.forward = fp32_forward
    return lambda: setattr(module, "forward", forward)


def policy_modules(net: nn.Module, policy: str) -> list[nn.Module]:
    layers = _leaf_layers(net)
    return {"bf16": [], "fp32-last": layers[-1:], "fp32-first": layers[:1],
            "fp32-norm": [m for m in net.modules() if isinstance(m, NORMS)],
            "fp32-first+last": layers[:1] + layers[-1:]}[policy]


def local_errors(net: nn.Module, x: torch.Tensor) -> list[tuple[str, str, float]]:
    """Each leaf layer's bf16-vs-fp32 error on the fp32 input it sees in an fp32 pass."""
    inputs = {}

    def keep_input(name):
        def hook(module, args, output):
            inputs[name] = args[0].detach()  # returns None: the output stays as it is
        return hook

    hooks = [m.register_forward_hook(keep_input(name)) for name, m in net.named_modules() if not list(m.children())]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    out = []
    modules = dict(net.named_modules())
    with torch.no_grad():
        for name, inp in inputs.items():
            m = modules[name]
            state = {k: v.clone() for k, v in m.state_dict().items()}  # BatchNorm updates running stats
            ref = m(inp)
            m.load_state_dict(state)
            with torch.autocast("cpu", torch.bfloat16):
                low = m(inp)
            m.load_state_dict(state)
            out.append((name, type(m).__name__, rel(low, ref)))
    return out


def error(ckpt: Path, n: int = 16) -> None:
    torch.manual_seed(0)
    recipe, nets = load(ckpt)
    G, D = nets["generator"], nets["discriminator"]
    real = real_batch(recipe, n)
    z = torch.randn(n, G.noise_size)
    snapshot = {k: {n_: v.clone() for n_, v in net.state_dict().items()} for k, net in nets.items()}

    def restore():
        for k, net in nets.items():
            net.load_state_dict(snapshot[k])

    print(f"checkpoint {ckpt}, batch {n}, CPU autocast bf16 vs fp32\n")
    for label, net, x in (("generator", G, z), ("discriminator", D, real)):
        print(f"local error per layer, {label} (fed the fp32 pass's input):")
        for name, kind, err in local_errors(net, x):
            print(f"  {name:10s} {kind:16s} {err:.4f}")
        restore()
    ref = forward_pass(G, D, z, real, bf16=False)
    restore()
    print("\nend to end (same weights, noise and images):")
    print("| policy | G images rel. err | max diff (8-bit levels) | D(real) rel. err | D loss fp32 / bf16 | G loss fp32 / bf16 | D grad rel. err (cos) | G grad rel. err (cos) | worst G layer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for policy in ("bf16", "fp32-last", "fp32-norm", "fp32-first", "fp32-first+last"):
        undo = [keep_module_fp32(m) for net in (G, D) for m in policy_modules(net, policy)]
        out = forward_pass(G, D, z, real, bf16=True)
        for u in undo:
            u()
        restore()
        gd, cd, _ = grad_stats(out[4], ref[4])
        gg, cg, worst = grad_stats(out[5], ref[5])
        levels = ((out[0] - ref[0]).abs().max() * 127.5).item()
        print(f"| {policy} | {rel(out[0], ref[0]):.4f} | {levels:.1f} | {rel(out[1], ref[1]):.4f} | "
              f"{ref[2]:.4f} / {out[2]:.4f} | {ref[3]:.4f} / {out[3]:.4f} | {gd:.3f} ({cd:.4f}) | {gg:.3f} ({cg:.4f}) | {worst} |")


# =========================================================================== quality

NAMES = {"no": "fp32", "bf16": "bf16", "sim": "sim"}  # run folders: fp32-sN, bf16-sN, sim-sN


def run_dir(out: Path, precision: str, seed: int) -> Path:
    return out / f"{NAMES[precision]}-s{seed}"


def quality_train(out: Path, recipe: str, seed: int, precision: str, steps: int | None) -> None:
    import subprocess

    head = harness.harness_command("bf16", "sim", "train") if precision == "sim" else harness.ganforge("train")
    cmd = [*head, "--recipe", recipe, "--mixed-precision", "no" if precision == "sim" else precision,
           "--set", f"seed={seed}", "--set", "log.keep=100", "-o", str(run_dir(out, precision, seed)), "--no-progress"]
    if steps:
        cmd += ["--steps", str(steps)]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, env=harness.child_env())


def read_run(path: Path) -> dict:
    if not (path / "metrics.jsonl").is_file():
        raise SystemExit(f"no run in {path}: train the runs first (--train), or point --out at their folder")
    rows = harness.read_metrics(path)
    speed = harness.logged_speed(rows)
    evals, scoring = [], 0.0
    for r in rows:
        if "eval" in r:
            scoring += r.get("eval_seconds", 0.0)
            scores = {k.rpartition("/")[2]: v for k, v in r["eval"].items()}  # pixels/kd -> kd
            evals.append({"step": r["step"], "train_s": r["time"] - scoring, "kid": scores.get("kid", scores.get("kd"))})
    last = max(r["step"] for r in rows)
    total = max(r["time"] for r in rows if "time" in r) - scoring
    return {"speed": speed, "evals": evals, "steps": last, "train_s": total}


def kid_at(run: dict, step: int) -> dict | None:
    return next((e for e in run["evals"] if e["step"] == step), None)


def rescale_time(bf: dict, fp: dict, speedup: float) -> None:
    """A simulated bf16 run's training seconds as a native-bf16 run's: the fp32 run's seconds per step / speedup."""
    per_step = fp["train_s"] / fp["steps"] / speedup
    for e in bf["evals"]:
        e["train_s"] = e["step"] * per_step
    bf["train_s"] = bf["steps"] * per_step


def quality_report(out: Path, seeds: list[int], figure: Path | None, low: str = "bf16", speedup: float | None = None,
                   fp32_steps: int | None = None, recipe: str = "dcgan-cats") -> None:
    runs = {(p, s): read_run(run_dir(out, p, s)) for s in seeds for p in ("no", low)}
    if low == "sim":
        for s in seeds:
            rescale_time(runs[("sim", s)], runs[("no", s)], speedup)
    print("| run | steps | images/s (median) | training s | KID by step (training s) |")
    print("|---|---|---|---|---|")
    for (p, s), r in runs.items():
        curve = ", ".join(f"{e['step']}: {e['kid']:.3f} ({e['train_s']:.0f})" for e in r["evals"])
        speed = f"{r['speed']:.1f}" if p != "sim" else f"({r['speed']:.1f} simulated)"
        print(f"| {NAMES[p]} seed {s} | {r['steps']} | {speed} | {r['train_s']:.0f} | {curve} |")
    print()
    print(f"| seed | {NAMES[low]} / fp32 speed | equal steps (step): fp32 KID | {NAMES[low]} KID | "
          f"equal time: fp32 KID (step, s) | {NAMES[low]} KID (step, s) |")
    print("|---|---|---|---|---|---|")
    for s in seeds:
        fp, bf = runs[("no", s)], runs[(low, s)]
        # equal time: the fp32 run stopped at `fp32_steps` (default: its last evaluation) against the
        # low-precision evaluation whose training time is nearest
        last = kid_at(fp, fp32_steps) if fp32_steps else fp["evals"][-1]
        fp_s = last["train_s"]
        same_step = kid_at(bf, last["step"])
        same_time = min(bf["evals"], key=lambda e: abs(e["train_s"] - fp_s))
        ratio = f"{speedup:.2f}x (given)" if low == "sim" else f"{bf['speed'] / fp['speed']:.2f}x"
        print(f"| {s} | {ratio} | ({last['step']}) {last['kid']:.3f} | "
              f"{same_step['kid']:.3f} | {last['kid']:.3f} ({last['step']}, {fp_s:.0f}) | "
              f"{same_time['kid']:.3f} ({same_time['step']}, {same_time['train_s']:.0f}) |")
    scored = sorted((out.glob("*/eval500-*.json")))
    if scored:  # optional: `ganforge eval CKPT -n 500 -o RUN/eval500-STEP.json` on chosen checkpoints
        print("\nscored afterwards (`ganforge eval`, more images than in training):\n")
        print("| run | step | generated vs real | KID | FID |")
        print("|---|---|---|---|---|")
        for path in scored:
            r = json.loads(path.read_text())
            sc = r["scores"]
            print(f"| {path.parent.name} | {r['step']} | {r['num_generated']} vs {r['num_real']} | "
                  f"{sc['kid']:.3f} +- {sc.get('kid_std', 0):.3f} | {sc.get('fid', float('nan')):.1f} |")
    if figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
        for (p, s), r in runs.items():
            ax.plot([e["step"] for e in r["evals"]], [e["kid"] for e in r["evals"]], marker="o",
                    color="tab:blue" if p == "no" else "tab:orange", linestyle="-" if s == seeds[0] else "--",
                    label=f"{'bf16 (simulated)' if p == 'sim' else NAMES[p]} seed {s}")
        ax.set_xlabel("training step")
        ax.set_title(f"{recipe}: KID during training", fontsize=10)
        ax.set_ylabel("KID (lower is better)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(figure)
        print(f"\nfigure: {figure}")


def quality(args) -> None:
    low = "sim" if args.simulate else "bf16"
    if args.train:
        for s in args.seeds:
            quality_train(args.out, args.recipe, s, "no", args.steps)
            quality_train(args.out, args.recipe, s, low, args.bf16_steps)
    quality_report(args.out, args.seeds, args.figure, low, args.speedup, args.fp32_steps, args.recipe)


# =========================================================================== command line

DEFAULT_CHECKPOINT = Path("runs/full/dcgan-cats/checkpoints/step-00006400")


def parse_args(argv=None) -> argparse.Namespace:
    top = argparse.ArgumentParser(prog="python -m benchmarks.bf16", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("sim", help="train with simulated bf16, or check the simulation on a checkpoint")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="train|check")
    sim_sub.add_parser("train", help="`ganforge train ARGS` with bf16's roundings on fp32 kernels "
                                     "(every argument after `train` goes to ganforge; plus --keep-fp32 first,last)")
    p = sim_sub.add_parser("check", help="the simulation's error against fp32 beside real autocast's, on a checkpoint")
    p.add_argument("checkpoint", help="a checkpoint folder of an unconditional run (RUN/checkpoints/step-N)")
    p.add_argument("-n", type=int, default=16, help="batch size")

    p = sub.add_parser("error", help="where bf16 autocast loses precision, layer by layer and end to end")
    p.add_argument("checkpoint", type=Path, nargs="?", default=DEFAULT_CHECKPOINT,
                   help=f"a checkpoint folder of an unconditional run (default: {DEFAULT_CHECKPOINT})")
    p.add_argument("-n", type=int, default=16, help="batch size")

    p = sub.add_parser("quality", help="fp32 and bf16 runs scored by KID at equal steps and equal time",
                       description="For each seed: the recipe in fp32 for --steps and in bf16 for --bf16-steps, one run "
                                   "after the other, with the recipe's in-training KID and every checkpoint kept. The "
                                   "recipe must keep a constant learning rate. Prints, per run, the speed and the KID "
                                   "curve against steps and training seconds, and per seed the comparison at equal "
                                   "steps and at equal time. --simulate trains the bf16 runs with `sim train`; equal "
                                   "time then comes from --speedup (bf16 / fp32 speed on a native-bf16 CPU).")
    p.add_argument("--out", type=Path, required=True, help="folder holding the runs (fp32-sN, bf16-sN)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--recipe", default="dcgan-cats")
    p.add_argument("--train", action="store_true", help="train the runs first (else only read them)")
    p.add_argument("--steps", type=int, help="fp32 steps (default: the recipe's)")
    p.add_argument("--bf16-steps", type=int, default=9600, help="bf16 steps (a multiple of eval.every)")
    p.add_argument("--simulate", action="store_true", help="bf16 runs simulated on fp32 kernels (`sim train`)")
    p.add_argument("--speedup", type=float, help="with --simulate: bf16's speed over fp32 on a native-bf16 CPU")
    p.add_argument("--fp32-steps", type=int, help="the fp32 evaluation the equal-time comparison starts from")
    p.add_argument("--figure", type=Path)
    args = top.parse_args(argv)
    if args.command == "quality" and args.simulate and not args.speedup:
        p.error("--simulate needs --speedup (bf16 / fp32 speed measured on a CPU with native bf16)")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["sim", "train"]:  # everything after goes to `ganforge train` as it is
        sim_train(argv[2:])
        return
    args = parse_args(argv)
    if args.command == "sim":
        sim_check(args.checkpoint, args.n)
    elif args.command == "error":
        error(args.checkpoint, args.n)
    else:
        quality(args)


if __name__ == "__main__":
    main()
