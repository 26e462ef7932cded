"""`ganforge translate`: run an image-to-image checkpoint over a file or a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ganforge.cli import common


def translate_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="A checkpoint file, its folder, or a run folder.")],
    input_path: Annotated[Path, typer.Option("--input", "-i", help="An image or a folder of images.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the translated images (same file names).")],
    direction: Annotated[Optional[str], typer.Option("--direction", "-d", help="A direction the checkpoint declares (e.g. a2b or b2a); default: its first.")] = None,
    native: Annotated[bool, typer.Option("--native", help="Translate at the image's own resolution instead of the training size.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
):
    """Translate images, keeping file names and each input's size; unreadable files are reported and skipped."""
    import torch
    import torch.nn.functional as F
    from rich.progress import track

    from ganforge.core.errors import DataError, GanforgeError, did_you_mean
    from ganforge.core.registry import plugin_code
    from ganforge.data.images import read_image, save_pil_atomic, tensor_to_pil, to_float, to_tensor
    from ganforge.io.inference import load_for_inference
    from ganforge.io.samples import iter_image_files

    with common.user_errors():
        if not input_path.exists():
            raise GanforgeError(f"--input not found: {input_path}")
        registry = common.registry()
        loaded = load_for_inference(checkpoint, registry)
        directions = loaded.capabilities.directions
        algo_name = loaded.recipe.algorithm.name
        if not directions:
            raise GanforgeError(f"{loaded.path}: algorithm '{algo_name}' does not translate images",
                                hint="draw samples with `ganforge sample`")
        direction = direction if direction is not None else directions[0]
        if direction not in directions:
            raise GanforgeError(f"unknown --direction '{direction}'{did_you_mean(direction, directions)}; "
                                f"this checkpoint translates: {', '.join(directions)}")
        with plugin_code(registry.get("algorithm", algo_name), "making its translator"):
            fn = loaded.algorithm.translator(loaded.nets, direction)
        size = (loaded.data.image_size if loaded.data is not None else None) or getattr(loaded.recipe.data.config, "image_size", None)
        if input_path.is_dir():  # walked lazily, so a folder of any size streams; output kept out of the walk
            count = sum(1 for _ in iter_image_files(input_path, exclude=output))
            if not count:
                raise DataError(f"no images found in {input_path}")
            pairs = ((f, f.relative_to(input_path)) for f in iter_image_files(input_path, exclude=output))
        else:
            count, pairs = 1, iter([(input_path, Path(input_path.name))])
        output.mkdir(parents=True, exist_ok=True)
        failed, skipped, done = [], 0, 0  # the first five unreadable files are named, the rest counted
        show = progress and common.err.is_terminal
        for src, name in (track(pairs, total=count, description="translate", console=common.err) if show else pairs):
            try:
                img = read_image(src)
            except DataError as exc:
                failed, skipped = (failed + [(src, exc.message)])[:5], skipped + 1
                continue
            w, h = img.size
            x = to_float(to_tensor(img)).unsqueeze(0)
            if size and not native:
                x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            with torch.no_grad():
                y = fn(x).float().clamp(-1, 1)
            if y.shape[-2:] != (h, w):
                y = F.interpolate(y, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)
            dest = output / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            save_pil_atomic(tensor_to_pil(y[0]), dest)
            done += 1
        common.out.print(f"translated {done} image(s) {direction} into {output}")
        if failed:
            for src, msg in failed[:5]:
                common.err.print(f"[yellow]skipped:[/yellow] {msg}")
            if skipped > 5:
                common.err.print(f"[yellow]... and {skipped - 5} more unreadable file(s)[/yellow]")
            raise typer.Exit(1)
