"""Built-in optimisers (adam, adamw, rmsprop, sgd) and learning-rate schedules (constant, linear,
cosine, each with an optional warm-up), chosen per optimiser group in a recipe::

    [optim.discriminator]
    name = "rmsprop"
    lr = 5e-5
    [optim.discriminator.schedule]
    name = "cosine"
    warmup = 100
"""

from __future__ import annotations

from ganforge import hookimpl

from .optimizers import (
    AdamConfig,
    AdamWConfig,
    RMSpropConfig,
    SGDConfig,
    build_adam,
    build_adamw,
    build_rmsprop,
    build_sgd,
)
from .schedules import (
    ConstantConfig,
    CosineConfig,
    LinearConfig,
    build_constant,
    build_cosine,
    build_linear,
)

__all__ = ["register_optimizers", "register_schedules"]


@hookimpl
def register_optimizers(register):
    register("adam", build_adam, AdamConfig, summary="Adam (Kingma & Ba 2015); GAN default betas (0.5, 0.999)")
    register("adamw", build_adamw, AdamWConfig, summary="Adam with decoupled weight decay (Loshchilov & Hutter 2019)")
    register("rmsprop", build_rmsprop, RMSpropConfig, summary="RMSprop (the original WGAN's optimiser)")
    register("sgd", build_sgd, SGDConfig, summary="SGD with optional (Nesterov) momentum")


@hookimpl
def register_schedules(register):
    register("constant", build_constant, ConstantConfig, summary="The base rate throughout (after an optional warm-up)")
    register("linear", build_linear, LinearConfig, summary="Constant, then linear decay from a fraction of training (CycleGAN)")
    register("cosine", build_cosine, CosineConfig, summary="Constant, then half-cosine decay from a fraction of training")
