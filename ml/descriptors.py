"""Colour, brightness, saturation and pattern descriptors of one garment image: a pure function.

Preference models use them next to the embedding: a visitor who likes dark or red clothes is
described in a few numbers here, while an embedding trained to tell garment classes apart
spreads colour over many weak directions. Computed once per image (the preference fit task
stores them), on the cut-out when there is one, so the background does not count.

Layout (``DESCRIPTOR_NAMES``, ``DESCRIPTOR_VERSION``): brightness mean/std, saturation mean,
colourfulness, the two opponent colour means (red-green, yellow-blue), an 8-bin hue histogram
weighted by saturation, then pattern: mean gradient magnitude, the share of strong edges, the
horizontal/vertical balance of gradients, high-frequency energy and the foreground share.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

DESCRIPTOR_VERSION = 2
HUE_BINS = 8
DESCRIPTOR_NAMES: tuple[str, ...] = (
    "brightness", "brightness_std", "saturation", "colourfulness", "red_green", "yellow_blue",
    *(f"hue_{k}" for k in range(HUE_BINS)),
    "gradient", "edge_share", "stripe_balance", "high_frequency", "foreground",
)
SIZE = 64
_AXIS = (np.arange(SIZE) + 0.5) / SIZE - 0.5
_CENTRE = np.exp(-(_AXIS[:, None] ** 2 + _AXIS[None, :] ** 2) / (2 * 0.25**2))


def image_descriptors(img: Image.Image) -> np.ndarray:
    """The ``DESCRIPTOR_NAMES`` vector (float64) of ``img``; an alpha channel marks the subject.

    Without alpha, pixels count by a Gaussian weight centred on the picture (photos frame the
    garment in the middle; the edges are mostly background). All values are in [0, 1] or [-1, 1], so no statistics of a
    catalogue are needed to read them.
    """
    img = img.convert("RGBA") if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info else img.convert("RGB")
    small = img.resize((SIZE, SIZE), Image.BILINEAR)
    arr = np.asarray(small, dtype=np.float64) / 255.0
    if arr.shape[2] == 4:
        weight = arr[:, :, 3]
        rgb = arr[:, :, :3]
    else:
        weight = _CENTRE
        rgb = arr
    if weight.sum() < 1.0:  # an empty cut-out: fall back to the centre of the picture
        weight = _CENTRE
    w = weight / weight.sum()
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    value = rgb.max(axis=2)
    low = rgb.min(axis=2)
    chroma = value - low
    saturation = np.where(value > 1e-6, chroma / np.maximum(value, 1e-6), 0.0)
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    mean_luma = float((w * luma).sum())
    std_luma = float(np.sqrt((w * (luma - mean_luma) ** 2).sum()))
    rg, yb = r - g, 0.5 * (r + g) - b
    mean_rg, mean_yb = float((w * rg).sum()), float((w * yb).sum())
    std_rg = np.sqrt((w * (rg - mean_rg) ** 2).sum())
    std_yb = np.sqrt((w * (yb - mean_yb) ** 2).sum())
    colourfulness = float(np.sqrt(std_rg**2 + std_yb**2) + 0.3 * np.sqrt(mean_rg**2 + mean_yb**2))

    hue = _hue(r, g, b, value, chroma)
    bins = np.minimum((hue * HUE_BINS).astype(int), HUE_BINS - 1)
    hist = np.bincount(bins.ravel(), weights=(w * saturation).ravel(), minlength=HUE_BINS)
    hist = hist / hist.sum() if hist.sum() > 1e-9 else np.zeros(HUE_BINS)

    gy, gx = np.gradient(luma)
    inside = weight > 0.25
    if inside.sum() < 16:
        inside = np.ones_like(inside)
    magnitude = np.hypot(gx, gy)[inside]
    ax, ay = np.abs(gx)[inside].sum(), np.abs(gy)[inside].sum()
    lap = (np.roll(luma, 1, 0) + np.roll(luma, -1, 0) + np.roll(luma, 1, 1) + np.roll(luma, -1, 1) - 4 * luma)[inside]
    return np.array([
        mean_luma, std_luma, float((w * saturation).sum()), min(colourfulness, 1.0), mean_rg, mean_yb,
        *hist,
        min(float(magnitude.mean()) * 4.0, 1.0), float((magnitude > 0.1).mean()),
        float((ax - ay) / max(ax + ay, 1e-9)), min(float(np.abs(lap).mean()) * 4.0, 1.0),
        float(weight.mean()) if weight is not _CENTRE else 1.0,
    ], dtype=np.float64)


def _hue(r: np.ndarray, g: np.ndarray, b: np.ndarray, value: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """HSV hue in [0, 1) (0 for greys, whose saturation weight is 0 anyway)."""
    c = np.maximum(chroma, 1e-9)
    h = np.where(value == r, ((g - b) / c) % 6.0, np.where(value == g, (b - r) / c + 2.0, (r - g) / c + 4.0))
    return np.where(chroma > 1e-9, h / 6.0, 0.0) % 1.0
