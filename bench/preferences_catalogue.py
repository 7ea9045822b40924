"""The clothing-small photos as a preference catalogue: labels, embeddings, descriptors (cached).

Used by ``bench/preferences_families.py`` and ``bench/preferences_active.py``. The first run
embeds the 3,781 photos with efficientnet-lite0 (ONNX, CPU; a few minutes on a busy machine)
and computes ``ml.descriptors`` of each; both are cached in ``var/bench/clothing-small.npz``.

    nice -n 10 .venv/bin/python bench/preferences_catalogue.py   # build the cache, print its shape
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = Path("/work/shared/data/clothing-small")
CACHE = ROOT / "var" / "bench" / "clothing-small.npz"
TRUTH = ROOT / "var" / "bench" / "clothing-small-truth.npz"


@dataclass(frozen=True)
class Catalogue:
    features: np.ndarray      # (n, d) unit embeddings
    labels: np.ndarray        # (n,) class index
    label_names: list[str]
    descriptors: np.ndarray   # (n, len(DESCRIPTOR_NAMES))
    colour: np.ndarray        # (n, 3) CIE L*a*b* of the photo's centre: the simulator's colour truth
    pattern: np.ndarray       # (n,) high-frequency share of the centre's spectrum: its pattern truth


def load_catalogue(path: Path = CACHE) -> Catalogue:
    if path.is_file():
        data = np.load(path, allow_pickle=False)
        return Catalogue(data["features"], data["labels"], [str(s) for s in data["label_names"]],
                         _descriptors(), *_truth())
    return _build(path)


def _descriptors() -> np.ndarray:
    """``ml.descriptors`` of every photo, cached per ``DESCRIPTOR_VERSION``."""
    from PIL import Image

    from ml.descriptors import DESCRIPTOR_VERSION, image_descriptors

    path = CACHE.with_name(f"clothing-small-descriptors-v{DESCRIPTOR_VERSION}.npy")
    if path.is_file():
        return np.load(path)
    out = []
    for f in sorted(DATA.glob("*/*/*.jpg")):
        with Image.open(f) as img:
            img.draft("RGB", (256, 256))
            out.append(image_descriptors(img.convert("RGB")))
    np.save(path, np.stack(out))
    return np.stack(out)


def _truth(path: Path = TRUTH) -> tuple[np.ndarray, np.ndarray]:
    """What simulated visitors see, computed differently from ``ml.descriptors`` on purpose (the
    centre crop, CIE L*a*b*, a Fourier measure of pattern), so a predictor is not handed the
    simulator's own numbers."""
    if path.is_file():
        data = np.load(path)
        return data["colour"], data["pattern"]
    from PIL import Image

    colour, pattern = [], []
    for f in sorted(DATA.glob("*/*/*.jpg")):
        with Image.open(f) as img:
            img.draft("RGB", (128, 128))
            rgb = np.asarray(img.convert("RGB").resize((96, 96)), dtype=np.float64) / 255.0
        centre = rgb[24:72, 24:72]
        colour.append(_lab(centre.reshape(-1, 3).mean(axis=0)))
        grey = centre.mean(axis=2)
        power = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
        yy, xx = np.mgrid[-24:24, -24:24]
        pattern.append(power[np.hypot(yy, xx) > 8].sum() / max(power.sum(), 1e-12))
    np.savez(path, colour=np.array(colour), pattern=np.array(pattern))
    return np.array(colour), np.array(pattern)


def _lab(rgb: np.ndarray) -> np.ndarray:
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz /= np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _build(path: Path) -> Catalogue:
    from PIL import Image

    from ml.embedders import get_embedder

    path.parent.mkdir(parents=True, exist_ok=True)  # the descriptor and truth caches go there first
    files = sorted(DATA.glob("*/*/*.jpg"))
    label_names = sorted({f.parent.name for f in files})
    embedder = get_embedder("efficientnet-lite0")
    features = []
    for start in range(0, len(files), 64):
        images = []
        for f in files[start:start + 64]:
            with Image.open(f) as img:
                img.draft("RGB", (256, 256))
                images.append(img.convert("RGB"))
        features.append(embedder.embed([_square(img) for img in images]))
    catalogue = Catalogue(np.concatenate(features).astype(np.float64),
                          np.array([label_names.index(f.parent.name) for f in files]), label_names,
                          _descriptors(), *_truth())
    np.savez(path, features=catalogue.features, labels=catalogue.labels, label_names=np.array(label_names),
             )
    return catalogue


def _square(img):
    from PIL import Image

    side = max(img.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(img, ((side - img.size[0]) // 2, (side - img.size[1]) // 2))
    return canvas


if __name__ == "__main__":
    c = load_catalogue()
    print(f"{len(c.labels)} items, {c.features.shape[1]}-d embeddings, {c.descriptors.shape[1]} descriptors, "
          f"labels {c.label_names}")
