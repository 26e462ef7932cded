from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.data.folders import ImageTensorDataset, load_image_folder, resolve_data_path


@dataclass(frozen=True)
class CatsByBreedConfig:
    path: str = "grumpify-cats"
    image_size: int = 32


def build_cats_by_breed(config: CatsByBreedConfig):
    """Every sub-folder is a class (sorted by name); items carry image and label."""
    root = resolve_data_path(config.path)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    parts = [load_image_folder(f, config.image_size) for f in folders]
    images = torch.cat([p.images for p in parts])
    labels = torch.cat([torch.full((len(p),), i, dtype=torch.long) for i, p in enumerate(parts)])
    return {"images": ImageTensorDataset(images, labels=labels, class_names=[f.name for f in folders], source=str(root))}


@dataclass(frozen=True)
class CatsWithSketchesConfig:
    path: str = "grumpify-cats/grumpy"
    image_size: int = 32


def sketch(images_uint8: torch.Tensor) -> torch.Tensor:
    """A dark-on-white gradient-magnitude sketch (Sobel on grey), uint8 [N, 3, H, W]."""
    grey = images_uint8.float().mean(1, keepdim=True) / 255.0
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(grey, kx, padding=1), F.conv2d(grey, kx.transpose(2, 3), padding=1)
    edges = (gx.square() + gy.square()).sqrt().clamp(0, 1)
    return ((1.0 - edges) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def build_cats_with_sketches(config: CatsWithSketchesConfig):
    """Items: image = a sketch, target = the photo it came from."""
    photos = load_image_folder(resolve_data_path(config.path), config.image_size)
    return {"pairs": ImageTensorDataset(sketch(photos.images), photos.names, paired={"target": photos.images},
                                        source=photos.source)}
