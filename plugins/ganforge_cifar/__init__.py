"""Built-in plugin: the CIFAR-10 and CIFAR-100 datasets (``ganforge data fetch cifar10``, read
from the binary record files) and the CIFAR-10 recipes ``dcgan-cifar10``, ``cgan-cifar10``,
``wgan-gp-cifar10`` and ``sagan-cifar10`` (32 x 32, 100 epochs), trained with the networks of the
dcgan, cgan and sagan plugins."""

from __future__ import annotations

from ganforge import hookimpl

from .catalog import CIFAR10, CIFAR100
from .data import Cifar10Config, Cifar100Config, build_cifar, find_copy
from .records import CIFAR10_FORMAT, CIFAR100_FORMAT, read_class_names, read_records

__all__ = [
    "CIFAR10", "CIFAR100", "CIFAR10_FORMAT", "CIFAR100_FORMAT", "Cifar10Config", "Cifar100Config",
    "build_cifar", "find_copy", "read_class_names", "read_records", "register_datasets", "register_protocols",
    "register_recipes",
]


@hookimpl
def register_datasets(register):
    register("cifar10", build_cifar, Cifar10Config,
             summary="CIFAR-10, 10 labelled classes, 32x32; split train/test/all (`ganforge data fetch cifar10`)")
    register("cifar100", build_cifar, Cifar100Config,
             summary="CIFAR-100, 100 fine or 20 coarse labelled classes, 32x32 (`ganforge data fetch cifar100`)")


@hookimpl
def register_protocols(register):
    from ganforge.eval.protocols import Protocol

    def cifar10() -> Protocol:
        return Protocol(
            "cifar10",
            "CIFAR-10: 10,000 samples against the 50,000 training images, FID and KID with the standard network",
            num=10_000, dataset="cifar10", data_options={"split": "train"}, num_real=50_000,
            reference="the usual CIFAR-10 GAN protocol (10k generated vs the 50k training images)",
        )

    register("cifar10", cifar10, summary="10,000 samples vs the 50,000 CIFAR-10 training images, FID and KID")


@hookimpl
def register_recipes(register):
    from ganforge import register_package_recipes

    register_package_recipes(register, __name__)
