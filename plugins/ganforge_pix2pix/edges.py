"""Edge maps computed in torch, for pairs derived on the fly from any folder of photos ("edges2cats").

Two detectors, both on the luminance of the image and both black lines on white (the look of the
pix2pix edges2shoes/edges2handbags data):

- ``canny`` (default; Canny 1986): Gaussian blur (``sigma``), Sobel gradients, non-maximum suppression
  along the gradient direction (quantised to 0/45/90/135 degrees), then double thresholding with
  hysteresis: pixels above ``high`` are edges, pixels above ``low`` are edges when connected to one.
  Thresholds are fractions of each image's largest gradient magnitude, so they adapt to contrast.
  Lines are one pixel thin.
- ``sobel``: the Sobel gradient magnitude of the blurred image, normalised per image, thresholded at
  ``high`` (thicker, noisier lines; cheaper).

Run as a script to write edge maps of a folder (e.g. the images a recipe held out), ready for
``ganforge translate``::

    python -m ganforge_pix2pix.edges grumpify-cats/grumpy held-out-edges --last 8

(SRC is found like a recipe's data.path: as given, under $GANFORGE_DATA, in the download cache, or in
the data shipped with ganforge.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

DETECTORS = ("canny", "sobel")


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))


def _sobel(x: Tensor) -> tuple[Tensor, Tensor]:
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype).view(1, 1, 3, 3)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(xp, kx), F.conv2d(xp, kx.transpose(2, 3))


def _shift(t: Tensor, dy: int, dx: int) -> Tensor:
    """``out[y, x] = t[y + dy, x + dx]`` (zero outside the image)."""
    h, w = t.shape[-2:]
    p = F.pad(t, (1, 1, 1, 1))
    return p[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def edge_mask(images_uint8: Tensor, detector: str = "canny", sigma: float = 1.0, low: float = 0.1,
              high: float = 0.2) -> Tensor:
    """Boolean edge masks ``[N, 1, H, W]`` of uint8 RGB images ``[N, 3, H, W]``."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown edge detector {detector!r} (known: {', '.join(DETECTORS)})")
    x = images_uint8.float() / 255.0
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    gx, gy = _sobel(_gaussian_blur(grey, sigma))
    mag = torch.sqrt(gx.square() + gy.square())
    mag = mag / mag.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1, 1)
    if detector == "sobel":
        return mag >= high
    # Non-maximum suppression: keep a pixel only where it is the ridge across the edge.
    angle = torch.atan2(gy, gx) % math.pi
    sector = torch.round(angle / (math.pi / 4)).long() % 4  # 0: horizontal gradient, 1: 45, 2: 90, 3: 135
    keep = torch.zeros_like(mag, dtype=torch.bool)
    for s, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ridge = (mag >= _shift(mag, dy, dx)) & (mag >= _shift(mag, -dy, -dx))
        keep |= (sector == s) & ridge
    thin = torch.where(keep, mag, torch.zeros_like(mag))
    strong, weak = thin >= high, thin >= low
    # Hysteresis: grow the strong edges through connected weak pixels until nothing changes.
    edges = strong
    for _ in range(mag.shape[-1] * mag.shape[-2]):
        grown = weak & (F.max_pool2d(edges.float(), 3, 1, 1) > 0)
        if torch.equal(grown, edges):
            break
        edges = grown
    return edges


def edge_maps(images_uint8: Tensor, detector: str = "canny", sigma: float = 1.0, low: float = 0.1,
              high: float = 0.2) -> Tensor:
    """Black-on-white edge maps of uint8 RGB images, as uint8 RGB ``[N, 3, H, W]``."""
    out = []
    for chunk in images_uint8.split(256):
        mask = edge_mask(chunk, detector, sigma, low, high)
        out.append(torch.where(mask, 0, 255).to(torch.uint8).expand(-1, 3, -1, -1))
    return torch.cat(out).contiguous()


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    from ganforge import load_image_folder, save_pil_atomic, tensor_to_pil, to_float

    parser = argparse.ArgumentParser(prog="python -m ganforge_pix2pix.edges", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="folder of photos (as given, or under $GANFORGE_DATA / the cache / bundled data)")
    parser.add_argument("output", type=Path, help="folder for the edge maps (same file names, .png)")
    parser.add_argument("--size", type=int, default=64, help="resize and center-crop to this size first (default 64)")
    parser.add_argument("--last", type=int, default=0, help="only the last N images in file-name order (a recipe's holdout)")
    parser.add_argument("--detector", choices=DETECTORS, default="canny")
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--low", type=float, default=0.1)
    parser.add_argument("--high", type=float, default=0.2)
    args = parser.parse_args(argv)
    from ganforge import GanforgeError
    from ganforge_datasets.folders import find_data

    try:
        ds = load_image_folder(find_data(args.source, what="photo folder"), args.size)
    except GanforgeError as exc:
        parser.exit(2, f"error: {exc}\n")
    images, names = ds.images, ds.names
    if args.last > 0:
        images, names = images[-args.last :], names[-args.last :]
    edges = edge_maps(images, args.detector, args.sigma, args.low, args.high)
    args.output.mkdir(parents=True, exist_ok=True)
    for img, name in zip(edges, names):
        dest = args.output / Path(name).with_suffix(".png")
        dest.parent.mkdir(parents=True, exist_ok=True)
        save_pil_atomic(tensor_to_pil(to_float(img)), dest)
    print(f"wrote {len(names)} edge map(s) to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
