"""Reading odd image files as RGB, resizing, and writing grids."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.core.errors import DataError
from ganforge.data.images import (
    IMAGE_SUFFIXES,
    list_images,
    read_image,
    save_image_grid,
    tensor_to_pil,
    to_tensor,
)

DATA = Path(os.environ.get("GANFORGE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
GRUMPY = DATA / "grumpify-cats" / "grumpy"
needs_data = pytest.mark.skipif(not GRUMPY.is_dir(), reason=f"real data not found at {DATA} (set GANFORGE_DATA)")


def pixel(img: Image.Image, xy=(0, 0)) -> tuple[int, int, int]:
    assert img.mode == "RGB"
    return img.getpixel(xy)


def save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


# --- list_images -----------------------------------------------------------------------------


def test_list_images_recursive_natural_sorted_skips_hidden_and_non_images(tmp_path):
    tiny = Image.new("RGB", (2, 2))
    for name in ["img10.png", "img2.png", "img1.JPG", "notes.txt", ".hidden.png", "._img3.png"]:
        (tmp_path / name).write_bytes(b"x") if name.endswith(".txt") else save(tiny, tmp_path / name, format="PNG")
    (tmp_path / "sub").mkdir()
    save(tiny, tmp_path / "sub" / "a.webp", format="WEBP")
    (tmp_path / ".git").mkdir()
    save(tiny, tmp_path / ".git" / "b.png")

    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["img1.JPG", "img2.png", "img10.png", "sub/a.webp"]


def test_suffixes_cover_common_formats():
    assert {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"} <= set(IMAGE_SUFFIXES)


def test_list_images_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope"):
        list_images(tmp_path / "nope")


# --- read_image: mode conversion -----------------------------------------------------------------


def test_grayscale_becomes_gray_rgb(tmp_path):
    img = read_image(save(Image.new("L", (4, 4), 77), tmp_path / "g.png"))
    assert pixel(img) == (77, 77, 77)


def test_one_bit_image(tmp_path):
    img = read_image(save(Image.new("1", (4, 4), 1), tmp_path / "b.png"))
    assert pixel(img) == (255, 255, 255)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (2, 1))
    rgba.putpixel((0, 0), (200, 0, 0, 255))  # opaque red stays red
    rgba.putpixel((1, 0), (0, 0, 0, 0))  # fully transparent black becomes white
    img = read_image(save(rgba, tmp_path / "a.png"))
    assert pixel(img, (0, 0)) == (200, 0, 0)
    assert pixel(img, (1, 0)) == (255, 255, 255)


def test_half_transparent_la(tmp_path):
    img = read_image(save(Image.new("LA", (2, 2), (0, 128)), tmp_path / "la.png"))
    r, g, b = pixel(img)
    assert r == g == b and 120 <= r <= 135  # black at ~50% over white


def test_palette_image(tmp_path):
    pal = Image.new("RGB", (4, 4), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    img = read_image(save(pal, tmp_path / "p.png"))
    assert pixel(img) == (10, 200, 30)


def test_palette_with_transparency_uses_white(tmp_path):
    pal = Image.new("P", (2, 1), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    img = read_image(save(pal, tmp_path / "pt.png", transparency=0))
    assert pixel(img, (0, 0)) == (255, 255, 255)
    assert pixel(img, (1, 0)) == (255, 0, 0)


@pytest.mark.parametrize("value, expected", [(65535, 255), (0, 0), (32896, 128), (257 * 40, 40)])
def test_16bit_grayscale_is_scaled_not_clipped(tmp_path, value, expected):
    src = Image.fromarray(np.full((3, 3), value, dtype=np.uint16))
    assert src.mode.startswith("I;16")
    img = read_image(save(src, tmp_path / "16.png"))
    assert pixel(img) == (expected,) * 3


def test_32bit_integer_image_is_scaled(tmp_path):
    arr = np.array([[0, 65535]], dtype=np.int32)
    assert Image.fromarray(arr).mode == "I"
    img = read_image(save(Image.fromarray(arr), tmp_path / "i.tiff"))
    assert pixel(img, (0, 0)) == (0, 0, 0) and pixel(img, (1, 0)) == (255, 255, 255)


def test_cmyk_jpeg(tmp_path):
    img = read_image(save(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), tmp_path / "c.jpg", quality=95))
    assert all(c >= 250 for c in pixel(img))


def test_rgb_jpeg_and_tiff(tmp_path):
    for name in ("x.jpg", "x.tiff", "x.bmp"):
        img = read_image(save(Image.new("RGB", (8, 8), (0, 128, 255)), tmp_path / name))
        assert all(abs(a - b) <= 3 for a, b in zip(pixel(img), (0, 128, 255)))


# --- read_image: failures ----------------------------------------------------------------------


def test_text_file_named_png_is_a_one_line_data_error(tmp_path):
    path = tmp_path / "x.png"
    path.write_text("definitely not a picture\n")
    with pytest.raises(DataError) as info:
        read_image(path)
    msg = str(info.value)
    assert "x.png" in msg and "\n" not in msg and "not an image" in msg


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="gone.png.*not found"):
        read_image(tmp_path / "gone.png")


def test_truncated_png_fails_on_read(tmp_path):
    buf = tmp_path / "full.png"
    rng = np.random.default_rng(0)  # noisy, so the compressed data is long
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf)
    data = buf.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as info:
        read_image(cut)
    assert "cut.png" in str(info.value) and "\n" not in str(info.value)


# --- to_tensor / tensor_to_pil -------------------------------------------------------------------


def test_to_tensor_without_size_keeps_pixels():
    t = to_tensor(Image.new("RGB", (5, 3), (1, 2, 3)))
    assert t.dtype == torch.uint8 and t.shape == (3, 3, 5)
    assert t[:, 0, 0].tolist() == [1, 2, 3]


def test_to_tensor_resizes_shorter_side_and_center_crops():
    img = Image.new("RGB", (90, 30), (255, 0, 0))  # red | green | blue thirds
    img.paste((0, 255, 0), (30, 0, 60, 30))
    img.paste((0, 0, 255), (60, 0, 90, 30))
    t = to_tensor(img, size=10)
    assert t.shape == (3, 10, 10)
    center = t[:, :, 2:8].float()
    assert center[1].min() > 200 and center[0].max() < 40 and center[2].max() < 40


def test_to_tensor_upscales_small_images():
    t = to_tensor(Image.new("L", (8, 16), 100), size=32)
    assert t.shape == (3, 32, 32) and int(t.float().mean().round()) == 100


def test_tensor_to_pil_maps_range():
    t = torch.full((3, 2, 2), -1.0)
    t[:, 0, 1] = 1.0
    t[:, 1, 0] = 5.0  # clamped
    img = tensor_to_pil(t)
    assert img.mode == "RGB" and img.size == (2, 2)
    assert pixel(img, (0, 0)) == (0, 0, 0)
    assert pixel(img, (1, 0)) == (255, 255, 255)
    assert pixel(img, (0, 1)) == (255, 255, 255)


def test_float_roundtrip_is_exact():
    from ganforge.data.images import to_float, to_uint8

    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    f = to_float(u)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), u)


# --- save_image_grid ---------------------------------------------------------------------------


def test_save_image_grid_writes_png_of_expected_size(tmp_path):
    images = torch.rand(5, 3, 8, 12) * 2 - 1
    out = tmp_path / "deep" / "grid.png"
    assert save_image_grid(images, out, nrow=3) == out
    with Image.open(out) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        assert img.size == (3 * (12 + 2) + 2, 2 * (8 + 2) + 2)
    assert sorted(p.name for p in out.parent.iterdir()) == ["grid.png"]  # no temp files left


def test_save_image_grid_overwrites_and_matches_pixels(tmp_path):
    out = tmp_path / "g.png"
    save_image_grid(torch.zeros(1, 3, 4, 4), out, nrow=8)
    save_image_grid(torch.ones(2, 3, 4, 4), out, nrow=8)
    img = read_image(out)
    assert img.size == (2 * 6 + 2, 6 + 2)
    assert pixel(img, (0, 0)) == (0, 0, 0)  # padding is black
    assert pixel(img, (3, 3)) == (255, 255, 255)


@needs_data
def test_real_image_reads_as_64px_rgb():
    img = read_image(GRUMPY / "0.png")
    assert img.mode == "RGB" and img.size == (64, 64)
