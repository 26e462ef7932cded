"""Built-in plugin: augmentations (DiffAugment in the training step, deluxe on real images)."""

from ganforge import hookimpl

from .deluxe import DeluxeConfig, build_deluxe
from .diffaug import DiffAugmentConfig, build_diffaug


@hookimpl
def register_augmentations(register):
    register(
        "diffaug",
        build_diffaug,
        DiffAugmentConfig,
        summary="DiffAugment: differentiable color/translation/cutout on every D input",
    )
    register(
        "deluxe",
        build_deluxe,
        DeluxeConfig,
        summary="Classic real-image augmentation: zoom + random crop, flip, colour jitter",
    )
