"""ganforge: a plugin-based toolkit for training GANs."""

from importlib.metadata import PackageNotFoundError, version

from ganforge.core.hookspecs import hookimpl

try:
    __version__ = version("ganforge")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["hookimpl", "__version__"]
