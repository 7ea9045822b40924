"""Safe image decoding and the geometric steps of the pipeline (crop, pad, resize, encode).

Everything that reads bytes from a user goes through ``decode_image``: only JPEG, PNG and WebP are
opened, the pixel count is checked before any pixel is decoded, and the result is always 8-bit RGB
or RGBA in its upright orientation, so later stages never see a surprising mode.
"""
from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP")
# EXIF orientations that swap width and height.
_TRANSPOSED = {5, 6, 7, 8}
# Margin around the subject's bounding box, as a share of its longer side.
CROP_MARGIN = 0.06
WHITE = (255, 255, 255)


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message says why, in words for the uploader."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_image(data: bytes, max_pixels: int, draft_size: int | None = None) -> Image.Image:
    """Decode untrusted bytes into an upright 8-bit RGB or RGBA image.

    ``draft_size``: the caller needs no more than this many pixels on the long side. JPEGs are then
    decoded at a reduced DCT scale (several times faster for phone photos) and every image is
    reduced to fit. ``info["source_width"]``/``["source_height"]`` keep the upright original size.
    """
    if not data:
        raise ImageRejected("the file is empty")
    with warnings.catch_warnings():
        # Pillow warns about decompression bombs above its own limit; here any warning is fatal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise ImageRejected("not a JPEG, PNG or WebP image") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected(f"the image has too many pixels (limit {max_pixels / 1e6:.0f} MP)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageRejected(f"the image header is truncated or corrupt ({exc})") from None
        width, height = img.size
        frames = getattr(img, "n_frames", 1)
        if width * height * frames > max_pixels:
            raise ImageRejected(
                f"the image is {width}×{height} pixels"
                + (f" × {frames} frames" if frames > 1 else "")
                + f", over the {max_pixels / 1e6:.0f} MP limit"
            )
        orientation = img.getexif().get(0x0112, 1)
        source_size = (height, width) if orientation in _TRANSPOSED else (width, height)
        if draft_size and img.format == "JPEG":
            img.draft("RGB", (draft_size, draft_size))
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageRejected(f"the image data is truncated or corrupt ({exc})") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected(f"the image has too many pixels (limit {max_pixels / 1e6:.0f} MP)") from None
    img = ImageOps.exif_transpose(img)
    img = _to_8bit(img)
    if draft_size and max(img.size) > draft_size:
        img.thumbnail((draft_size, draft_size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    img.info["source_width"], img.info["source_height"] = source_size
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    """Normalise any decoded mode to 8-bit RGB, or RGBA when the image has transparency."""
    mode = img.mode
    if mode in ("RGB", "RGBA"):
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit (or wider) greyscale: scale the 16-bit range down instead of clipping at 255.
        values = np.asarray(img, dtype=np.float32) / 257.0
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode in ("LA", "PA", "La", "RGBa"):
        return img.convert("RGBA")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def flatten_on_white(img: Image.Image) -> Image.Image:
    """RGB with any transparency composited onto white."""
    if img.mode == "RGB":
        return img
    if img.mode != "RGBA":
        return img.convert("RGB")
    background = Image.new("RGB", img.size, WHITE)
    background.paste(img, mask=img.getchannel("A"))
    return background


def composite_on_white(rgb: Image.Image, mask: np.ndarray) -> Image.Image:
    """The cut-out: the subject where the (soft) mask is 1, white where it is 0."""
    rgb = flatten_on_white(rgb)
    alpha = Image.fromarray(np.clip(mask * 255.0, 0, 255).astype(np.uint8), "L")
    if alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.BILINEAR)
    background = Image.new("RGB", rgb.size, WHITE)
    background.paste(rgb, mask=alpha)
    return background


def mask_bbox(mask: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the mask's foreground, or None when it is empty."""
    rows = np.flatnonzero((mask > threshold).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((mask > threshold).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def subject_crop(img: Image.Image, mask: np.ndarray | None, size: int) -> Image.Image:
    """Crop to the mask's bounding box plus a margin, pad to a white square, resize to ``size``.

    Without a mask (or with an empty one) the whole image is padded, so nothing is cut off.
    """
    rgb = flatten_on_white(img)
    box = None
    if mask is not None:
        scale_x, scale_y = rgb.width / mask.shape[1], rgb.height / mask.shape[0]
        found = mask_bbox(mask)
        if found is not None:
            left, top, right, bottom = found
            margin = CROP_MARGIN * max(right - left, bottom - top)
            box = (
                max(0, int((left - margin) * scale_x)), max(0, int((top - margin) * scale_y)),
                min(rgb.width, int(np.ceil((right + margin) * scale_x))),
                min(rgb.height, int(np.ceil((bottom + margin) * scale_y))),
            )
    if box is not None:
        rgb = rgb.crop(box)
    side = max(rgb.size)
    square = Image.new("RGB", (side, side), WHITE)
    square.paste(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
    return square.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)


def crop_box(img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """Crop by ``(x, y, w, h)`` in source pixels (the upright original), scaled to ``img``'s size."""
    x, y, w, h = box
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise ImageRejected("the crop must have a positive width and height inside the image")
    source_w = img.info.get("source_width", img.width)
    source_h = img.info.get("source_height", img.height)
    if x + w > source_w or y + h > source_h:
        raise ImageRejected(f"the crop {x},{y},{w},{h} reaches outside the {source_w}×{source_h} image")
    sx, sy = img.width / source_w, img.height / source_h
    return img.crop((int(x * sx), int(y * sy), max(int(x * sx) + 1, round((x + w) * sx)),
                     max(int(y * sy) + 1, round((y + h) * sy))))


def make_thumbnail(img: Image.Image, size: int) -> bytes:
    """A WebP thumbnail that fits in ``size``×``size``, transparency flattened on white."""
    thumb = flatten_on_white(img).copy()
    thumb.thumbnail((size, size), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return encode_webp(thumb)


def encode_webp(img: Image.Image, quality: int = 82) -> bytes:
    """WebP at a fast method: ~10× quicker than default-compression PNG for the same photo."""
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=quality, method=2)
    return buf.getvalue()


def encode_png_fast(img: Image.Image) -> bytes:
    """Lossless PNG at compression level 1 (masks compress well even so)."""
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()
