"""Where the CIFAR sets come from: the binary distribution on Alex Krizhevsky's page at the
University of Toronto (https://www.cs.toronto.edu/~kriz/cifar.html).

Only the *binary* version is read (fixed-size records); the pickled "python version" is never
downloaded or unpickled. The page publishes an MD5 for each archive and no SHA-256, so the MD5 is
checked (``DataSource.md5``) and no SHA-256 is pinned: ``ganforge data fetch`` records the SHA-256
it got in the dataset's ``.ganforge-source.json``, and ``--sha256 HEX`` checks one you have.
"""

from __future__ import annotations

from ganforge import DataSource

from .records import CIFAR10_FORMAT, CIFAR100_FORMAT, verify_cifar10, verify_cifar100

_MB = 1_000_000

CIFAR10 = DataSource(
    "cifar10", "download",
    summary="CIFAR-10: 60,000 32x32 colour images in 10 classes (50,000 train, 10,000 test), binary records",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", archive="tar.gz",
    md5="c32a1d4ab5d03f1284b67883e8d87530",
    size=162 * _MB,  # approximate, as the page gives it
    files=(*CIFAR10_FORMAT.train_files, *CIFAR10_FORMAT.test_files, *CIFAR10_FORMAT.names_files.values()),
    verify=verify_cifar10, family="cifar",
)

CIFAR100 = DataSource(
    "cifar100", "download",
    summary="CIFAR-100: 60,000 32x32 colour images in 100 classes (20 superclasses), binary records",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", archive="tar.gz",
    md5="03b5dce01913d631647c71ecec9e9cb8",
    size=161 * _MB,  # approximate, as the page gives it
    files=(*CIFAR100_FORMAT.train_files, *CIFAR100_FORMAT.test_files, *CIFAR100_FORMAT.names_files.values()),
    verify=verify_cifar100, family="cifar",
)
