"""The bf16 harness's simulation (``python -m benchmarks.bf16 sim``) rounds where bf16 autocast
rounds: its convolutions and linear layers give what real CPU autocast gives (up to the fp32
accumulation order), forward and backward, and nothing outside a simulated network changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.train.hardware import native_bf16

from benchmarks import bf16 as bf16_sim

BF16_ULP = 2.0 ** -7  # the spacing of bf16 values in [1, 2): one rounding step, relative


@pytest.fixture(autouse=True)
def _restore_functional():
    yield
    bf16_sim.uninstall()


def representable(t: torch.Tensor) -> bool:
    return torch.equal(t, t.bfloat16().float())


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(8, 16, 3, padding=1), (4, 8, 12, 12)),
    (lambda: nn.ConvTranspose2d(8, 16, 4, stride=2, padding=1), (4, 8, 6, 6)),
    (lambda: nn.Linear(40, 24), (6, 40)),
])
def test_layers_match_real_autocast_forward_and_backward(make, shape):
    torch.manual_seed(0)
    layer, x = make(), torch.randn(shape)
    grad_out = None

    def step(net, autocast: bool):
        nonlocal grad_out
        net.zero_grad(set_to_none=True)
        inp = x.clone().requires_grad_(True)
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            y = net(inp)
        y = y.float()
        if grad_out is None:
            grad_out = torch.randn_like(y)
        y.backward(grad_out)
        return y.detach(), inp.grad, net.weight.grad

    real = step(layer, autocast=True)
    plain = step(layer, autocast=False)
    sim_net = bf16_sim.simulate(make())
    sim_net.load_state_dict(layer.state_dict())
    sim = step(sim_net, autocast=False)

    for got, want, ref in zip(sim, real, plain):
        assert representable(got)  # every value the simulation hands on is a bf16 value
        # the same bf16 values as real autocast or a neighbour (fp32 sums in another order) ...
        assert (got - want).abs().max() <= 2 * BF16_ULP * want.abs().max()
        # ... and as far from fp32 as real autocast: measured 0.6-1.0x, as oneDNN's emulated bf16
        # rounds once more in transposed convolutions and in the gradients
        sim_error, real_error = rel(got, ref), rel(want, ref)
        assert 0.5 * real_error <= sim_error <= 1.05 * real_error and sim_error > 1e-3
    if isinstance(layer, nn.Conv2d) and native_bf16() is False:
        # With oneDNN's emulated bf16 a convolution's forward pass rounds exactly as the simulation
        # does; native bf16 kernels (avx512_bf16) sum in another order: there the bound above holds.
        assert torch.equal(sim[0], real[0])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_only_simulated_networks_change():
    torch.manual_seed(0)
    a, x = nn.Conv2d(3, 5, 3), torch.randn(2, 3, 8, 8)
    before = a(x)
    sim = bf16_sim.simulate(nn.Conv2d(3, 5, 3))
    sim.load_state_dict(a.state_dict())
    assert torch.equal(a(x), before)  # plain layers keep fp32 with the simulation installed
    assert not torch.equal(sim(x), before) and representable(sim(x))


def test_keep_fp32_last_leaves_the_output_layer_exact():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 4))
    x = torch.randn(3, 10)
    sim = bf16_sim.simulate(nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 4)), keep={"last"})
    sim.load_state_dict(net.state_dict())
    out = sim(x)
    hidden = bf16_sim.bf16_round(torch.relu(bf16_sim.bf16_round(nn.functional.linear(
        bf16_sim.bf16_round(x), bf16_sim.bf16_round(net[0].weight), bf16_sim.bf16_round(net[0].bias)))))
    assert torch.allclose(out, net[2](hidden), atol=1e-6)  # the last layer in fp32 on the rounded hidden
