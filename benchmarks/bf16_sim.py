"""bf16 autocast's arithmetic at fp32 speed, for measuring what bf16 does to quality on any CPU.

On a CPU without bf16 instructions a real bf16 autocast run is 14-20x slower than fp32 (oneDNN
emulates it), so a full-length quality comparison is out of reach there. The rounding itself does not
depend on the CPU: autocast casts a convolution's (or linear layer's) input, weight and bias to bf16,
the kernel accumulates in fp32 and rounds its output to bf16; in the backward pass the incoming
gradient is bf16 and the input and weight gradients come out rounded to bf16 (the weight's then
goes to the fp32 parameter). This module reproduces exactly those roundings around the fp32 kernels:

    y = round(conv(round(x), round(w), round(b)))      backward: every gradient crossing a round() is rounded

and rounds each network's output, as autocast leaves it bf16 (the trainer's wrapper then makes it fp32).
What it does not reproduce: the order of fp32 accumulation inside the kernels, the rounding of
element-wise ops between two convolutions (normalisation, activations, additions), whose results the
next convolution rounds anyway, and any extra rounding inside the bf16 kernels. Measured against real
autocast on an AVX2 CPU (oneDNN's emulated bf16; tests/test_bf16_sim.py): a convolution's forward pass
is bit-identical; in transposed convolutions and in the input and weight gradients real autocast
rounds once more, so the simulation's error there is 0.6-0.85x real autocast's. `check` measures it
end to end on a trained checkpoint: the simulation's error against fp32 beside real autocast's, and
for scale the gradient of another batch.

    # train a recipe with simulated bf16 (any `ganforge train` arguments; the run records "no" precision)
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bf16_sim.py train --recipe dcgan-cats -o runs/sim
    # how faithful the simulation is, on a checkpoint (real autocast is slow here: a few seconds)
    .venv/bin/python benchmarks/bf16_sim.py check runs/bf16q/fp32-s0/checkpoints/step-00006400

`--keep-fp32 last` (or `first`, `first,last`) leaves each network's last (first) convolution or linear
layer in fp32, to find which layers bf16's error comes from.
"""

from __future__ import annotations

import contextlib
import sys
import threading

import torch
import torch.nn.functional as F
from torch import nn

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


def _leaf_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


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


def train(argv: list[str]) -> None:
    """`ganforge train ARGS` with every network of the run simulated."""
    keep: set[str] = set()
    if "--keep-fp32" in argv:
        i = argv.index("--keep-fp32")
        keep = set(argv[i + 1].split(","))
        del argv[i : i + 2]
    if not keep <= {"first", "last"}:
        sys.exit("--keep-fp32 takes first, last or first,last")
    from ganforge.train import loop as trainer
    from ganforge.cli import main

    build = trainer.TrainRun.build

    def simulated_build(self):
        build(self)
        for net in self.nets.values():
            simulate(net, keep)
        print(f"bf16 simulated (fp32 kernels with bf16 rounding){'; fp32: ' + ','.join(sorted(keep)) if keep else ''}",
              flush=True)

    trainer.TrainRun.build = simulated_build
    sys.argv = ["ganforge", "train", *argv]
    main()


def check(ckpt: str, n: int = 16) -> None:
    """Simulation vs real bf16 autocast vs fp32 on one LSGAN step of a trained checkpoint."""
    import copy
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from bf16_error import forward_pass, grad_stats, load, real_batch, rel

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


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("train", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "train":
        train(sys.argv[2:])
    else:
        check(sys.argv[2])
