"""The labelled-folders dataset: images labelled by the folder they are in.

Either a root whose sub-folders are the classes (``path = "grumpify-cats"``: classes
``grumpy``, ``russian_blue``), or an explicit list of folders, each one class
(``folders = ["grumpify-cats/grumpy", "apple2orange/apple"]``). A class is named after its folder
(the last part of the path) unless ``class_names`` says otherwise; the names are the dataset's
``class_names`` and so go into every checkpoint (``ganforge sample --class grumpy``).

The config lists the classes without reading an image (``list_classes()``), so class-conditional
networks take ``num_classes`` from the data when the recipe is read. ``ganforge train --data ROOT``
makes ROOT's sub-folders the classes: it resets ``folders`` and ``class_names``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ganforge import DataError, Domains, ImageTensorDataset, list_images, load_image_folder, natural_key
from ganforge_datasets.folders import find_data as resolve_data_path  # data root, download cache, bundled


@dataclass(frozen=True)
class LabelledFoldersConfig:
    reset_by_data_option: ClassVar[tuple[str, ...]] = ("folders", "class_names")
    """Options `ganforge train --data ROOT` resets: they pick classes under the recipe's own root."""
    path: str = ""
    """A folder whose sub-folders are the classes (absolute, or relative to the current folder,
    $GANFORGE_DATA, the download cache or the data shipped with ganforge); with
    ``folders`` set, the folder they are relative to (empty: the current folder or the data root)."""
    folders: tuple[str, ...] = ()
    """One folder per class, in class order; empty: every sub-folder of ``path`` (natural order)."""
    class_names: tuple[str, ...] = ()
    """Names of the classes, in order; empty: each folder's own name."""
    image_size: int = 64
    balance: bool = False
    """Repeat each class's images up to the size of the largest class, so a training batch draws
    every class equally often (the images themselves are shared, not copied)."""
    max_per_class: int | None = None
    """Use only the first this many images of each class (natural file-name order)."""

    def __post_init__(self):
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ValueError(f"max_per_class must be at least 1, got {self.max_per_class}")
        if self.image_size < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")

    def list_classes(self) -> tuple[str, ...]:
        """The class names in label order, from the folders alone (no image is read); raises
        DataError when the folders are not there."""
        return tuple(name for name, _ in class_folders(self))


def class_folders(config: LabelledFoldersConfig) -> list[tuple[str, Path]]:
    """(class name, folder) for every class, in class order. Raises DataError with a hint."""
    if config.folders:
        base = resolve_data_path(config.path, what="dataset folder") if str(config.path).strip() else None
        folders = []
        for entry in config.folders:
            folder = base / entry if base is not None else resolve_data_path(entry, what="class folder")
            if not folder.is_dir():
                raise DataError(f"class folder not found: {folder}",
                                hint="every entry of data.folders must be a folder of images")
            folders.append(folder)
    else:
        if not str(config.path).strip():
            raise DataError("the labelled-folders dataset needs a folder of class sub-folders, or a list of folders",
                            hint="set data.path (a root whose sub-folders are the classes) or data.folders")
        root = resolve_data_path(config.path, what="dataset folder")
        if not root.is_dir():
            raise DataError(f"not a folder: {root} (expected a folder whose sub-folders are the classes)")
        folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: natural_key(p.name))
        folders = [f for f in folders if list_images(f)]
        if not folders:
            raise DataError(f"{root} has no sub-folders with images; each class must be a sub-folder",
                            hint="put each class's images into its own sub-folder, or list them in data.folders")
    names = list(config.class_names) if config.class_names else [f.name for f in folders]
    if len(names) != len(folders):
        raise DataError(f"data.class_names has {len(names)} names for {len(folders)} class folders "
                        f"({', '.join(f.name for f in folders)})", hint="give one name per folder, in order")
    seen: dict[str, Path] = {}
    for name, folder in zip(names, folders):
        if name in seen:
            raise DataError(f"two class folders have the name '{name}' ({seen[name]} and {folder})",
                            hint="set data.class_names to tell them apart")
        seen[name] = folder
    if len(folders) < 2:
        raise DataError(f"a labelled dataset needs at least two classes, found {len(folders)} ({', '.join(names)})",
                        hint="for a single folder use the image-folder dataset")
    return list(zip(names, folders))


def build_labelled_folders(config: LabelledFoldersConfig) -> Domains:
    classes = class_folders(config)
    parts = [load_image_folder(folder, config.image_size, max_images=config.max_per_class) for _, folder in classes]
    target = max(len(p) for p in parts)
    images, names, labels, warnings = [], [], [], []
    for index, ((name, _), part) in enumerate(zip(classes, parts)):
        n = len(part)
        take = torch.arange(target) % n if config.balance else torch.arange(n)
        images.append(part.images.index_select(0, take))
        names.extend(f"{name}/{part.names[int(i)]}" for i in take)
        labels.append(torch.full((len(take),), index, dtype=torch.long))
        warnings.extend(part.warnings)
    source = config.path or ", ".join(config.folders)
    dataset = ImageTensorDataset(torch.cat(images), names, labels=torch.cat(labels),
                                 class_names=[name for name, _ in classes], source=source, warnings=warnings)
    dataset.class_sizes = {name: len(p) for (name, _), p in zip(classes, parts)}
    return {"images": dataset}
