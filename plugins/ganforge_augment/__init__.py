"""Built-in plugin: augmentations (DiffAugment and ADA in the training step, deluxe on real images)."""

from ganforge import hookimpl

from .ada import ADAConfig, build_ada
from .deluxe import DeluxeConfig, build_deluxe
from .diffaug import DiffAugmentConfig, build_diffaug


@hookimpl
def register_augmentations(register):
    register(
        "diffaug",
        build_diffaug,
        DiffAugmentConfig,
        summary="DiffAugment: differentiable color/saturation/translation/cutout/cutmix on every D input",
    )
    register(
        "deluxe",
        build_deluxe,
        DeluxeConfig,
        summary="Classic real-image augmentation: zoom + random crop, flip, colour jitter",
    )
    register(
        "ada",
        build_ada,
        ADAConfig,
        summary="Adaptive discriminator augmentation (ADA): flips, rotations, scaling, colour on every D input, "
        "with a probability tuned from D's overfitting",
    )
