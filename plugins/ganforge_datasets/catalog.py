"""The data behind the built-in datasets: the cat faces shipped with this plugin, and the public
CycleGAN and pix2pix sets from their authors' server (``ganforge data fetch NAME``).

Archive sizes are approximate (shown before a download starts). No SHA-256 is recorded for the
public archives: the server publishes none. Every fetch still checks the archive's own CRCs and its
layout, and records the SHA-256 it got in the dataset's ``.ganforge-source.json``;
``ganforge data fetch NAME --sha256 HEX`` checks a digest you have.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ganforge import DataSource

BUNDLED_ROOT = Path(str(files(__package__) / "data"))
"""The folder of the datasets shipped inside this package (relative data paths are also looked up here)."""

CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"

_MB = 1_000_000

GRUMPIFY_CATS = DataSource(
    "grumpify-cats", "bundled", summary="Russian Blue (66) and Grumpy Cat (179) faces, 64x64",
    layout=("russian_blue", "grumpy"), bundled=BUNDLED_ROOT / "grumpify-cats", family="cats",
)


def _cyclegan(name: str, summary: str, mb: int, **kw) -> DataSource:
    return DataSource(name, "download", summary=summary, url=CYCLEGAN_URL.format(name=name), archive="zip",
                      size=mb * _MB, layout=("trainA", "trainB"), family="cyclegan", **kw)


def _pix2pix(name: str, summary: str, mb: int, layout=("train", "val")) -> DataSource:
    return DataSource(name, "download", summary=summary, url=PIX2PIX_URL.format(name=name), archive="tar.gz",
                      size=mb * _MB, layout=layout, family="pix2pix")


CYCLEGAN_SETS = {
    s.name: s for s in (
        _cyclegan("apple2orange", "apples (A) <-> oranges (B), ImageNet photos, 256x256", 78,
                  alt_layouts=(("apple", "orange"),)),
        _cyclegan("horse2zebra", "horses (A) <-> zebras (B), ImageNet photos, 256x256", 116),
        _cyclegan("summer2winter_yosemite", "Yosemite in summer (A) <-> winter (B), Flickr, 256x256", 132),
        _cyclegan("monet2photo", "Monet paintings (A) <-> landscape photos (B), 256x256", 305),
        _cyclegan("cezanne2photo", "Cezanne paintings (A) <-> photos (B), 256x256", 280),
        _cyclegan("ukiyoe2photo", "Ukiyo-e prints (A) <-> photos (B), 256x256", 292),
        _cyclegan("vangogh2photo", "Van Gogh paintings (A) <-> photos (B), 256x256", 306),
        _cyclegan("iphone2dslr_flower", "iPhone (A) <-> DSLR shallow depth of field (B) flowers", 340),
    )
}
"""Unpaired sets: the archive holds NAME/trainA, trainB, testA, testB."""

PIX2PIX_SETS = {
    s.name: s for s in (
        _pix2pix("facades", "building facades: label maps (left) | photos (right), 256x256 pairs", 31,
                 layout=("train", "val", "test")),
        _pix2pix("maps", "aerial photos (left) | Google maps (right), 600x600 pairs", 250),
        _pix2pix("cityscapes", "street photos (left) | label maps (right), 256x256 pairs", 104),
        _pix2pix("night2day", "the same scene at night (left) | by day (right), 256x256 pairs", 2000,
                 layout=("train", "val", "test")),
        _pix2pix("edges2shoes", "edge maps (left) | shoe photos (right), 256x256 pairs", 2170),
        _pix2pix("edges2handbags", "edge maps (left) | handbag photos (right), 256x256 pairs", 8600),
    )
}
"""Paired sets: the archive holds NAME/train, val (, test), each image a side-by-side pair."""

DOWNLOADABLE = {**CYCLEGAN_SETS, **PIX2PIX_SETS}


def fetch_hint(path: str) -> str | None:
    """'fetch it with: ganforge data fetch NAME ...' when a relative path starts with a known set."""
    first = str(path).replace("\\", "/").split("/", 1)[0]
    if first in DOWNLOADABLE:
        return (f"download it with `ganforge data fetch {first}` (or set GANFORGE_DATA to a folder "
                f"holding {first}/, or pass --data FOLDER)")
    return None
