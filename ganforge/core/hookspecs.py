"""The hooks a ganforge plugin can implement.

Every hook receives a ``register`` callback that the core owns. A plugin calls it once per
component it provides::

    from ganforge import hookimpl

    @hookimpl
    def register_generators(register):
        register("my-gen", build_my_gen, MyGenConfig, summary="A tiny generator")

``register(name, builder, config=None, *, summary=None, aliases=())`` where ``builder(config)``
returns the component and ``config`` is a dataclass whose fields are exactly the options a recipe
may set (``None`` means the component takes no options). Because the core owns the callback it can
report duplicate names with both providers, and hooks can grow new keyword arguments later without
breaking plugins: pluggy lets an implementation accept fewer arguments than the spec offers.

Recipes are registered as ``register(name, path)`` where ``path`` is a TOML file (usually package
data found with ``importlib.resources.files(__package__) / "recipes" / "x.toml"``).
"""

from __future__ import annotations

import pluggy

PROJECT = "ganforge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# kind -> hook name; the order is the order of `ganforge plugins` columns.
HOOKS = {
    "generator": "register_generators",
    "discriminator": "register_discriminators",
    "loss": "register_losses",
    "augmentation": "register_augmentations",
    "dataset": "register_datasets",
    "algorithm": "register_algorithms",
    "optimizer": "register_optimizers",
    "schedule": "register_schedules",
    "metric": "register_metrics",
    "feature_extractor": "register_feature_extractors",
    "protocol": "register_protocols",
    "recipe": "register_recipes",
}
KINDS = tuple(HOOKS)


@hookspec
def register_generators(register):
    """Register generator networks (``nn.Module``; forward takes what the algorithm feeds it)."""


@hookspec
def register_discriminators(register):
    """Register discriminator / critic networks (``nn.Module`` image -> logits)."""


@hookspec
def register_losses(register):
    """Register adversarial losses (see ``ganforge.core.components.AdversarialLoss``)."""


@hookspec
def register_augmentations(register):
    """Register augmentations (see ``ganforge.core.components.Augmentation``)."""


@hookspec
def register_datasets(register):
    """Register datasets: ``builder(config)`` returns ``{domain: dataset}`` (see ``ganforge.data.folders``)."""


@hookspec
def register_algorithms(register):
    """Register training algorithms (see ``ganforge.core.components.Algorithm``)."""


@hookspec
def register_optimizers(register):
    """Register optimisers: ``builder(config)`` returns ``params -> torch.optim.Optimizer``; the
    config must have ``lr`` (the group's base rate)."""


@hookspec
def register_schedules(register):
    """Register learning-rate schedules (see ``ganforge.core.components.Schedule``)."""


@hookspec
def register_metrics(register):
    """Register evaluation metrics (see ``ganforge.eval.interfaces.Metric``): FID, KID, ..."""


@hookspec
def register_feature_extractors(register):
    """Register feature extractors for metrics (see ``ganforge.eval.interfaces.FeatureExtractor``)."""


@hookspec
def register_protocols(register):
    """Register evaluation protocols for ``ganforge eval --protocol NAME``: ``builder()`` returns a
    ``ganforge.eval.protocols.Protocol`` (samples, real set, metrics, network of a published score)."""


@hookspec
def register_recipes(register):
    """Register recipes: ``register(name, path_to_toml)``."""
