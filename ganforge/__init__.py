"""ganforge: a plugin-based toolkit for training GANs.

Plugin authors import everything they need from here::

    from ganforge import hookimpl, Algorithm, Capabilities, SampleRequest, Run, Batch

The names resolve lazily, so ``import ganforge`` stays fast (the CLI and ``ganforge report`` do
not pay for torch until they use it).
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from ganforge.core.hookspecs import hookimpl

try:
    __version__ = version("ganforge")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

# name -> module that defines it: the public API, one import point.
_PUBLIC = {
    # component interfaces
    "Algorithm": "ganforge.core.components",
    "AdversarialLoss": "ganforge.core.components",
    "Augmentation": "ganforge.core.components",
    "Capabilities": "ganforge.core.components",
    "SampleRequest": "ganforge.core.components",
    "ExportSpec": "ganforge.core.components",
    "ExportInput": "ganforge.core.components",
    "Schedule": "ganforge.core.components",
    "Metric": "ganforge.eval.interfaces",
    "FeatureExtractor": "ganforge.eval.interfaces",
    "Protocol": "ganforge.eval.protocols",
    # what an algorithm receives
    "Run": "ganforge.train.run",
    "Batch": "ganforge.data.items",
    "DatasetInfo": "ganforge.data.items",
    "DomainInfo": "ganforge.data.items",
    "Callback": "ganforge.train.callbacks",
    # data
    "ImageTensorDataset": "ganforge.data.folders",
    "Domains": "ganforge.data.folders",
    "DataWarning": "ganforge.data.folders",
    "load_image_folder": "ganforge.data.folders",
    "resolve_data_path": "ganforge.data.folders",
    "DataSource": "ganforge.data.sources",
    "read_image": "ganforge.data.images",
    "to_tensor": "ganforge.data.images",
    "list_images": "ganforge.data.images",
    # recipes, registry, plugins
    "Recipe": "ganforge.core.recipes",
    "load_recipe": "ganforge.core.recipes",
    "register_package_recipes": "ganforge.core.recipes",
    "Registry": "ganforge.core.registry",
    "get_registry": "ganforge.core.plugins",
    "PluginSet": "ganforge.core.plugins",
    # running (training from a script: ``from ganforge.train import train``)
    "load_for_inference": "ganforge.io.inference",
    # errors
    "GanforgeError": "ganforge.core.errors",
    "PluginError": "ganforge.core.errors",
    "PluginCodeError": "ganforge.core.errors",
    "UnknownComponentError": "ganforge.core.errors",
    "RecipeError": "ganforge.core.errors",
    "DataError": "ganforge.core.errors",
    "CheckpointError": "ganforge.core.errors",
    "TrainingError": "ganforge.core.errors",
    "ExportError": "ganforge.core.errors",
    "MetricsError": "ganforge.eval.interfaces",
    "NetworkNotInstalled": "ganforge.eval.interfaces",
    "did_you_mean": "ganforge.core.errors",
    # files and images
    "cache_dir": "ganforge.core.files",
    "atomic_path": "ganforge.core.files",
    "write_atomic_text": "ganforge.core.files",
    "sha256_of": "ganforge.core.files",
    "datasets_dir": "ganforge.data.sources",
    "natural_key": "ganforge.data.images",
    "to_float": "ganforge.data.images",
    "to_uint8": "ganforge.data.images",
    "tensor_to_pil": "ganforge.data.images",
    "save_pil_atomic": "ganforge.data.images",
    "save_image_grid": "ganforge.data.images",
}

__all__ = ["hookimpl", "__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'ganforge' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value  # resolve once
    return value


def __dir__():
    return sorted(__all__)
