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


def _model_size(loaded) -> int:
    from ..errors import GanforgeError

    size = (loaded.data.image_size if loaded.data is not None else None) or getattr(loaded.recipe.data.config, "image_size", None)
    if not size:
        raise GanforgeError(f"{loaded.path} does not say which image size its model was trained at",
                            hint="it was written by another tool or a damaged run; retrain or re-export it")
    return int(size)


def _source_images(loaded, registry, input_path: Path | None, num: int):
    """Source images for a model that samples by translating: the user's, else the recipe's data."""
    import torch

    from ..errors import GanforgeError
    from ..run import fetch_fields

    if input_path is not None:
        if not input_path.exists():
            raise GanforgeError(f"--input not found: {input_path}")
        return {"input": _load_inputs(input_path, _model_size(loaded), num)}
    part = loaded.recipe.data
    domains = registry.get("dataset", part.name).build(part.config)
    return {d: fetch_fields(ds, torch.arange(min(num, len(ds))))["image"] for d, ds in domains.items()}


def sample_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="A checkpoint file, its folder, or a run folder (latest checkpoint).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The grid image to write (.png).")],
    num: Annotated[int, typer.Option("--num", "-n", help="How many samples (or source images).")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the noise: the same seed gives the same samples.")] = 0,
    class_name: Annotated[Optional[str], typer.Option("--class", help="Sample only this class (a name the checkpoint lists); default: one row per class.")] = None,
    individual: Annotated[Optional[Path], typer.Option("--individual", help="Also write each sample as its own PNG into this folder.")] = None,
    interpolate: Annotated[Optional[Path], typer.Option("--interpolate", help="Also write a latent interpolation GIF here.")] = None,
    input_path: Annotated[Optional[Path], typer.Option("--input", "-i", help="Source images (file or folder) for translation models; default: the recipe's data.")] = None,
):
    """Write a grid of samples (noise-to-image) or source | translation | reconstruction (image-to-image)."""
    from ..components import SampleRequest
    from ..errors import GanforgeError
    from ..images import save_image_grid, save_pil_atomic, tensor_to_pil
    from ..inference import load_for_inference
    from ..registry import plugin_code

    with common.user_errors():
        if num <= 0:
            raise GanforgeError(f"--num must be a positive integer, got {num}")
        if output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise GanforgeError(f"--output must be an image file name (.png), got {output}")
        registry = common.registry()
        loaded = load_for_inference(checkpoint, registry)
        algo, caps = loaded.algorithm, loaded.capabilities
        algo_comp = registry.get("algorithm", loaded.recipe.algorithm.name)
        if not (caps.sample or caps.sample_inputs):
            hint = ("translate with: ganforge translate --checkpoint ... --direction " + "|".join(caps.directions)
                    if caps.directions else "this algorithm declares no inference at all")
            raise GanforgeError(f"{loaded.path}: algorithm '{loaded.recipe.algorithm.name}' cannot sample", hint=hint)
        class_index = loaded.class_index(class_name) if class_name is not None else None
        if interpolate is not None and not caps.interpolate:
            raise GanforgeError(f"{loaded.path}: algorithm '{loaded.recipe.algorithm.name}' has no latent space to interpolate",
                                hint="drop --interpolate")
        if input_path is not None and not caps.sample_inputs:
            raise GanforgeError(f"{loaded.path}: algorithm '{loaded.recipe.algorithm.name}' samples from noise; it takes no --input",
                                hint="drop --input")
        images = _source_images(loaded, registry, input_path, num) if caps.sample_inputs else None
        request = SampleRequest(num=num, seed=seed, class_index=class_index, inputs=images)
        with plugin_code(algo_comp, "while sampling"):
            grid, nrow = algo.sample(loaded.nets, request)
        output.parent.mkdir(parents=True, exist_ok=True)
        save_image_grid(grid, output, nrow=nrow)
        common.out.print(f"wrote {output} ({len(grid)} images, checkpoint step {loaded.step})")
        if individual is not None:
            individual.mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(grid):
                save_pil_atomic(tensor_to_pil(img), individual / f"sample-{i:04d}.png")
            common.out.print(f"wrote {len(grid)} images to {individual}")
        if interpolate is not None:
            with plugin_code(algo_comp, "while interpolating"):
                frames = algo.interpolate(loaded.nets, seed, class_index)
            pil = [tensor_to_pil(f).resize((f.shape[-1] * 4, f.shape[-2] * 4)) for f in frames]
            interpolate.parent.mkdir(parents=True, exist_ok=True)
            tmp = interpolate.with_name(f".{interpolate.name}.tmp.gif")
            pil[0].save(tmp, save_all=True, append_images=pil[1:], duration=80, loop=0)
            tmp.replace(interpolate)
            common.out.print(f"wrote {interpolate} ({len(pil)} frames)")
