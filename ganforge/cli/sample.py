"""`ganforge sample`: images from a checkpoint, which carries everything needed to rebuild it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ganforge.core.files import atomic_path

from ganforge.cli import common


def _model_size(loaded) -> int:
    from ganforge.core.errors import GanforgeError

    size = (loaded.data.image_size if loaded.data is not None else None) or getattr(loaded.recipe.data.config, "image_size", None)
    if not size:
        raise GanforgeError(f"{loaded.path} does not say which image size its model was trained at",
                            hint="it was written by another tool or a damaged run; retrain or re-export it")
    return int(size)


def sample_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="A checkpoint file, its folder, or a run folder (latest checkpoint).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The grid image to write (.png).")],
    num: Annotated[int, typer.Option("--num", "-n", help="How many samples (or source images); more than one grid shows (1,024 at 64x64) need --individual.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the noise: the same seed gives the same samples.")] = 0,
    class_name: Annotated[Optional[str], typer.Option("--class", help="Sample only this class (a name the checkpoint lists); default: one row per class.")] = None,
    individual: Annotated[Optional[Path], typer.Option("--individual", help="Also write each sample as its own PNG into this folder (any number; the grid shows the first ones).")] = None,
    interpolate: Annotated[Optional[Path], typer.Option("--interpolate", help="Also write a latent interpolation GIF here.")] = None,
    input_path: Annotated[Optional[Path], typer.Option("--input", "-i", help="Source images (file or folder) for translation models; default: the recipe's data.")] = None,
    truncation: Annotated[Optional[float], typer.Option("--truncation", "-t", help="Truncation trick, in (0, 1]: pull latents towards their average (lower: more typical, less varied). Models with a mapping network (StyleGAN2) only.")] = None,
):
    """Write a grid of samples (noise-to-image) or source | translation | reconstruction (image-to-image)."""
    from ganforge.io import samples as sampling_io
    from ganforge.core.components import SampleRequest
    from ganforge.core.errors import GanforgeError
    from ganforge.data.images import tensor_to_pil
    from ganforge.io.inference import load_for_inference
    from ganforge.core.registry import plugin_code

    with common.user_errors():
        sampling_io.check_request(num, seed, output, individual)  # before any work: counts, seed, file type
        if truncation is not None and not 0.0 < truncation <= 1.0:
            raise GanforgeError(f"--truncation must be in (0, 1], got {truncation:g}",
                                hint="1 means no truncation; 0.5-0.8 are usual values")
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
        if truncation is not None and not caps.truncation:
            raise GanforgeError(f"{loaded.path}: algorithm '{loaded.recipe.algorithm.name}' has no latent average to truncate towards",
                                hint="drop --truncation (models with a mapping network, e.g. stylegan2-cats, support it)")
        if input_path is not None and not caps.sample_inputs:
            raise GanforgeError(f"{loaded.path}: algorithm '{loaded.recipe.algorithm.name}' samples from noise; it takes no --input",
                                hint="drop --input")
        source = None  # source images stream in chunks: the user's (--input), else the recipe's data
        if caps.sample_inputs:
            source = (sampling_io.ImageSource.from_path(input_path, _model_size(loaded)) if input_path is not None
                      else sampling_io.ImageSource.from_data(loaded.recipe.data, registry))

        def draw(n: int, chunk_seed: int, inputs):
            with plugin_code(algo_comp, "while sampling"):
                return algo.sample(loaded.nets, SampleRequest(num=n, seed=chunk_seed, class_index=class_index, inputs=inputs,
                                                         truncation=truncation))

        done = sampling_io.write_samples(draw, num=num, seed=seed, output=output, individual=individual, source=source,
                                         console=common.err)
        common.out.print(f"wrote {output} ({done.grid} images, checkpoint step {loaded.step})")
        if individual is not None:
            common.out.print(f"wrote {done.files} images to {individual}")
        for message in done.skipped[:5]:
            common.err.print(f"[yellow]skipped:[/yellow] {message}")
        if interpolate is not None:
            with plugin_code(algo_comp, "while interpolating"):
                frames = algo.interpolate(loaded.nets, seed, class_index)
            pil = [tensor_to_pil(f).resize((f.shape[-1] * 4, f.shape[-2] * 4)) for f in frames]
            with atomic_path(interpolate) as tmp:
                pil[0].save(tmp, save_all=True, append_images=pil[1:], duration=80, loop=0)
            common.out.print(f"wrote {interpolate} ({len(pil)} frames)")
