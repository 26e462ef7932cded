"""A tiny conditional GAN and a tiny paired translator, as a third-party plugin would write them."""

from __future__ import annotations

from ganforge import hookimpl
from ganforge.core.recipes import register_package_recipes

from .algorithms import CondGAN, CondGANConfig, PairedL1GAN, PairedConfig
from .datasets import CatsByBreedConfig, CatsWithSketchesConfig, build_cats_by_breed, build_cats_with_sketches
from .models import CondDiscConfig, CondGenConfig, PairDiscConfig, SketchGenConfig, CondDisc, CondGen, PairDisc, SketchGen


@hookimpl
def register_generators(register):
    register("demo-cond-gen", CondGen, CondGenConfig, summary="Class-conditional generator (label embedding joined to z)")
    register("demo-sketch-gen", SketchGen, SketchGenConfig, summary="Tiny image-to-image generator")


@hookimpl
def register_discriminators(register):
    register("demo-proj-disc", CondDisc, CondDiscConfig, summary="Projection discriminator (Miyato & Koyama 2018)")
    register("demo-pair-disc", PairDisc, PairDiscConfig, summary="Conditional discriminator on (input, output) pairs")


@hookimpl
def register_datasets(register):
    register("demo-cats-by-breed", build_cats_by_breed, CatsByBreedConfig, summary="Cat faces labelled by breed")
    register("demo-cats-with-sketches", build_cats_with_sketches, CatsWithSketchesConfig,
             summary="Cat faces paired with a gradient-magnitude sketch of each")


@hookimpl
def register_algorithms(register):
    register("demo-cgan", CondGAN, CondGANConfig, summary="Class-conditional GAN")
    register("demo-paired", PairedL1GAN, PairedConfig, summary="Paired translation: adversarial + L1")


@hookimpl
def register_recipes(register):
    register_package_recipes(register, __name__)
