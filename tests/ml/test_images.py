"""Safe decoding and the crop geometry, on generated images (no Django, no database)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.images import ImageRejected, crop_box, decode_image, subject_crop

LIMIT = 40_000_000


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"%PDF-1.4\n%%EOF", "not a JPEG, PNG or WebP"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not a JPEG, PNG or WebP"),
    (encode(Image.new("RGB", (8, 8)), "GIF"), "not a JPEG, PNG or WebP"),
    (encode(Image.new("RGB", (300, 200), "red"), "JPEG")[:400], "truncated or corrupt"),
])
def test_rejects_what_is_not_a_whole_allowed_image(data, reason):
    with pytest.raises(ImageRejected, match=reason):
        decode_image(data, max_pixels=LIMIT)


def test_pixel_bomb_is_rejected_before_decoding():
    bomb = encode(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    assert len(bomb) < 100_000
    with pytest.raises(ImageRejected, match=r"too many pixels \(limit 40 MP\)"):
        decode_image(bomb, max_pixels=LIMIT)
    # Under Pillow's own bomb limit but over ours: our limit wins.
    big = encode(Image.new("1", (8000, 6000)), "PNG", optimize=True)
    with pytest.raises(ImageRejected, match="8000×6000 pixels, over the 40 MP limit"):
        decode_image(big, max_pixels=LIMIT)


@pytest.mark.parametrize("mode, fmt, expected", [
    ("CMYK", "JPEG", "RGB"), ("P", "PNG", "RGB"), ("L", "JPEG", "RGB"), ("I;16", "PNG", "RGB"),
    ("LA", "PNG", "RGBA"), ("RGBA", "WEBP", "RGBA"),  # transparency is kept
])
def test_every_mode_becomes_8_bit_rgb_or_rgba(mode, fmt, expected):
    img = Image.new(mode, (32, 24))
    out = decode_image(encode(img, fmt), max_pixels=LIMIT)
    assert (out.mode, out.size) == (expected, (32, 24))


def test_sixteen_bit_greys_are_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    out = decode_image(encode(Image.fromarray(ramp), "PNG"), max_pixels=LIMIT)
    values = np.asarray(out)[..., 0]
    assert values.min() == 0 and values.max() == 255 and 100 < values.mean() < 155


def test_exif_orientation_is_applied_and_source_size_is_upright():
    img = Image.new("RGB", (40, 20), "white")
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red on the stored left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers rotate 90° clockwise: the red edge ends up on top
    out = decode_image(encode(img, "JPEG", exif=exif), max_pixels=LIMIT)
    assert out.size == (20, 40)
    assert (out.info["source_width"], out.info["source_height"]) == (20, 40)
    top, bottom = np.asarray(out)[2, 10], np.asarray(out)[-3, 10]
    assert top[0] > 200 and top[1] < 80 and bottom.min() > 200


def test_draft_decodes_a_large_jpeg_small_and_keeps_the_source_size():
    big = encode(Image.new("RGB", (3000, 4000), "navy"), "JPEG", quality=85)
    out = decode_image(big, max_pixels=LIMIT, draft_size=1024)
    assert max(out.size) == 1024
    assert (out.info["source_width"], out.info["source_height"]) == (3000, 4000)


def test_subject_crop_centres_the_masked_subject_on_white():
    img = Image.new("RGB", (200, 100), (0, 0, 255))
    mask = np.zeros((100, 200), dtype=np.float32)
    mask[40:60, 150:170] = 1.0  # a small subject at the right
    crop = np.asarray(subject_crop(img, mask, size=64))
    assert crop.shape == (64, 64, 3)
    # The subject fills the middle; without the mask the whole (padded) image is kept.
    assert tuple(crop[32, 32]) == (0, 0, 255)
    whole = np.asarray(subject_crop(img, None, size=64))
    assert tuple(whole[2, 32]) == (255, 255, 255) and tuple(whole[32, 32]) == (0, 0, 255)
    # An empty mask falls back to the whole image rather than cropping to nothing.
    assert np.array_equal(np.asarray(subject_crop(img, np.zeros_like(mask), size=64)), whole)


def test_crop_box_is_in_source_pixels_and_checked():
    big = encode(Image.new("RGB", (3000, 4000), "white"), "JPEG")
    img = decode_image(big, max_pixels=LIMIT, draft_size=1000)
    assert crop_box(img, (0, 0, 1500, 2000)).size == (img.width // 2, img.height // 2)
    with pytest.raises(ImageRejected, match="outside"):
        crop_box(img, (2000, 0, 1500, 100))
    with pytest.raises(ImageRejected, match="positive"):
        crop_box(img, (0, 0, 0, 10))
