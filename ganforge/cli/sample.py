"""`ganforge sample`: images from a checkpoint, which carries everything needed to rebuild it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common


def sample_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="A checkpoint file, its folder, or a run folder (latest checkpoint).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The grid image to write (.png).")],
    num: Annotated[int, typer.Option("--num", "-n", help="How many samples (or source images); more than one grid shows (1,024 at 64x64) need --individual.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the noise: the same seed gives the same samples.")] = 0,
    individual: Annotated[Optional[Path], typer.Option("--individual", help="Also write each sample as its own PNG into this folder (any number; the grid shows the first ones).")] = None,
    interpolate: Annotated[Optional[Path], typer.Option("--interpolate", help="Also write a latent interpolation GIF here.")] = None,
    input_path: Annotated[Optional[Path], typer.Option("--input", "-i", help="Source images (file or folder) for translation models; default: the recipe's data.")] = None,
):
    """Write a grid of samples (noise-to-image) or source | translation | reconstruction (image-to-image)."""
    from .. import sampling_io
    from ..errors import GanforgeError
    from ..images import tensor_to_pil
    from ..inference import load_for_inference

    with common.user_errors():
        sampling_io.check_request(num, seed, output, individual)  # before any work: counts, seed, file type
        registry = common.registry()
        loaded = load_for_inference(checkpoint, registry)
        algo = loaded.algorithm
        source = sampling_io.sample_source(loaded, registry, input_path)
        done = sampling_io.write_samples(algo, loaded.nets, num=num, seed=seed, output=output, individual=individual,
                                         source=source, console=common.err)
        common.out.print(f"wrote {output} ({done.grid} images, checkpoint step {loaded.step})")
        if individual is not None:
            common.out.print(f"wrote {done.files} images to {individual}")
        for message in done.skipped[:5]:
            common.err.print(f"[yellow]skipped:[/yellow] {message}")
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
