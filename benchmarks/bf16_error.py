"""Where bf16 autocast loses precision in a trained GAN: layer by layer, and in what training sees.

Loads the generator and discriminator of a trained unconditional run (default: a dcgan-cats
checkpoint), takes a batch of real images and a fixed batch of noise, and compares bf16 autocast with
fp32 on the same weights and inputs:

- local error of every layer: the layer's output under bf16 autocast vs fp32, both fed the same fp32
  input (so errors do not pile up from earlier layers);
- end-to-end: the generator's images (relative error, and the largest difference in 8-bit pixel
  levels), the discriminator's outputs, both losses (LSGAN), and the gradients of both networks'
  parameters (relative error and cosine similarity with the fp32 gradient);
- the same end-to-end figures with some layers kept in fp32 (policies: the networks' last layer,
  their normalisation layers, their first layer), to see which layers the error comes from.

    .venv/bin/python benchmarks/bf16_error.py runs/full/dcgan-cats/checkpoints/step-00006400
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ganforge.io.checkpoint import split_prefix
from ganforge.data.folders import load_image_folder, resolve_data_path
from ganforge.core.plugins import get_registry
from ganforge_datasets.catalog import BUNDLED_ROOT

NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)
LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def load(ckpt: Path):
    """The run's recipe (as TOML tables) and its generator and discriminator with the checkpoint's weights."""
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
    data = recipe["data"]
    folder = resolve_data_path(data["path"], also=(BUNDLED_ROOT,))
    ds = load_image_folder(folder, data.get("image_size", 64), progress=False, max_images=n)
    return ds.images[:n].float() / 127.5 - 1


def keep_fp32(module: nn.Module):
    """Run `module` outside autocast on fp32 inputs (its output is fp32)."""
    forward = module.forward

    def fp32_forward(*args):
        with torch.autocast("cpu", enabled=False):
            return forward(*[a.float() if torch.is_tensor(a) else a for a in args])

    module.forward = fp32_forward
    return lambda: setattr(module, "forward", forward)


def policy_modules(net: nn.Module, policy: str) -> list[nn.Module]:
    layers = [m for m in net.modules() if isinstance(m, LAYERS)]
    return {"bf16": [], "fp32-last": layers[-1:], "fp32-first": layers[:1],
            "fp32-norm": [m for m in net.modules() if isinstance(m, NORMS)],
            "fp32-first+last": layers[:1] + layers[-1:]}[policy]


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


def main(ckpt: Path, n: int = 16) -> None:
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
        undo = [keep_fp32(m) for net in (G, D) for m in policy_modules(net, policy)]
        out = forward_pass(G, D, z, real, bf16=True)
        for u in undo:
            u()
        restore()
        gd, cd, _ = grad_stats(out[4], ref[4])
        gg, cg, worst = grad_stats(out[5], ref[5])
        levels = ((out[0] - ref[0]).abs().max() * 127.5).item()
        print(f"| {policy} | {rel(out[0], ref[0]):.4f} | {levels:.1f} | {rel(out[1], ref[1]):.4f} | "
              f"{ref[2]:.4f} / {out[2]:.4f} | {ref[3]:.4f} / {out[3]:.4f} | {gd:.3f} ({cd:.4f}) | {gg:.3f} ({cg:.4f}) | {worst} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/full/dcgan-cats/checkpoints/step-00006400"))
