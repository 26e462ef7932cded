"""`ganforge sample`: images from a checkpoint, which carries everything needed to rebuild it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common


def _load_inputs(path: Path, size: int, limit: int):
    import torch

    from ..data import load_image_folder
    from ..images import read_image, to_float, to_tensor

    if path.is_dir():
        ds = load_image_folder(path, size, max_images=limit)
        return ds.get_batch(torch.arange(len(ds)))
    return to_float(to_tensor(read_image(path), size)).unsqueeze(0)


def sample_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="A checkpoint file, its folder, or a run folder (latest checkpoint).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The grid image to write (.png).")],
    num: Annotated[int, typer.Option("--num", "-n", help="How many samples (or source images).")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the noise: the same seed gives the same samples.")] = 0,
    individual: Annotated[Optional[Path], typer.Option("--individual", help="Also write each sample as its own PNG into this folder.")] = None,
    interpolate: Annotated[Optional[Path], typer.Option("--interpolate", help="Also write a latent interpolation GIF here.")] = None,
    input_path: Annotated[Optional[Path], typer.Option("--input", "-i", help="Source images (file or folder) for translation models; default: the recipe's data.")] = None,
):
    """Write a grid of samples (noise-to-image) or source | translation | reconstruction (image-to-image)."""
    import torch

    from ..errors import GanforgeError
    from ..images import save_image_grid, save_pil_atomic, tensor_to_pil
    from ..inference import load_for_inference

    with common.user_errors():
        if num <= 0:
            raise GanforgeError(f"--num must be a positive integer, got {num}")
        if output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise GanforgeError(f"--output must be an image file name (.png), got {output}")
        registry = common.registry()
        loaded = load_for_inference(checkpoint, registry)
        algo = loaded.algorithm
        images = None
        if getattr(algo, "sample_needs_images", False):
            size = getattr(loaded.recipe.data.config, "image_size", 64)
            if input_path is not None:
                if not input_path.exists():
                    raise GanforgeError(f"--input not found: {input_path}")
                x = _load_inputs(input_path, size, num)
                images = {"input": x}
            else:
                part = loaded.recipe.data
                domains = registry.get("dataset", part.name).builder(part.config)
                images = {d: ds.get_batch(torch.arange(min(num, len(ds)))) if hasattr(ds, "get_batch")
                          else torch.stack([ds[i] for i in range(min(num, len(ds)))]) for d, ds in domains.items()}
        grid, nrow = algo.sample(loaded.nets, num, seed, images)
        output.parent.mkdir(parents=True, exist_ok=True)
        save_image_grid(grid, output, nrow=nrow)
        common.out.print(f"wrote {output} ({len(grid)} images, checkpoint step {loaded.step})")
        if individual is not None:
            individual.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(grid):
                save_pil_atomic(tensor_to_pil(img), individual / f"sample-{i:04d}.png")
            common.out.print(f"wrote {len(grid)} images to {individual}")
        if interpolate is not None:
            if not hasattr(algo, "interpolate"):
                raise GanforgeError("this checkpoint's algorithm has no latent space to interpolate")
            frames = algo.interpolate(loaded.nets, seed)
            pil = [tensor_to_pil(f).resize((f.shape[-1] * 4, f.shape[-2] * 4)) for f in frames]
            interpolate.parent.mkdir(parents=True, exist_ok=True)
            tmp = interpolate.with_name(f".{interpolate.name}.tmp.gif")
            pil[0].save(tmp, save_all=True, append_images=pil[1:], duration=80, loop=0)
            tmp.replace(interpolate)
            common.out.print(f"wrote {interpolate} ({len(pil)} frames)")
