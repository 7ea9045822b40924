"""Background removal at working sizes below ISNet's 1024²: mask IoU against the 1024² mask, and time.

    nice -n 10 .venv/bin/python bench/background_size.py [--images 100] [--sizes 768,640,512,384]

Photos are spread over the labels of the validation split of ../shared/data/clothing-small (the
default size is chosen on validation, never on test). A mask is the model's soft mask above 0.5.
``STYLESITE_BACKGROUND_SIZE`` defaults to the smallest size whose mean IoU is ≥ 0.95.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.background import NATIVE_SIZE, remove_background  # noqa: E402

SHARED = Path(os.environ.get("STYLESITE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
MODEL = "isnet-general-use"


def photos(n: int) -> list[Path]:
    paths = sorted((SHARED / "data" / "clothing-small" / "validation").glob("*/*.jpg"))
    step = max(1, len(paths) // n)
    return paths[::step][:n]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--sizes", default="768,640,512,384")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    images = [Image.open(path).convert("RGB") for path in photos(args.images)]
    for size in [NATIVE_SIZE, *sizes]:
        remove_background(images[0], MODEL, size)  # load (and for other sizes, rewrite) once
    seconds = {size: 0.0 for size in [NATIVE_SIZE, *sizes]}
    scores: dict[int, list[float]] = {size: [] for size in sizes}
    for image in images:
        started = time.perf_counter()
        reference = remove_background(image, MODEL)
        seconds[NATIVE_SIZE] += time.perf_counter() - started
        for size in sizes:
            started = time.perf_counter()
            mask = remove_background(image, MODEL, size)
            seconds[size] += time.perf_counter() - started
            scores[size].append(iou(mask, reference))
        print(f"{len(scores[sizes[0]])}: " + ", ".join(f"{size}: IoU {scores[size][-1]:.3f}" for size in sizes),
              flush=True)
    n = len(images)
    print(f"{n} validation photos; IoU of the mask against the {NATIVE_SIZE}² mask\n")
    print("| size | mean IoU | 5th pct | min | s/image | speed-up |")
    print("|------|----------|---------|-----|---------|----------|")
    print(f"| {NATIVE_SIZE} | 1 | 1 | 1 | {seconds[NATIVE_SIZE] / n:.2f} | 1.0× |")
    for size in sizes:
        values = np.asarray(scores[size])
        print(f"| {size} | {values.mean():.3f} | {np.percentile(values, 5):.3f} | {values.min():.3f} | "
              f"{seconds[size] / n:.2f} | {seconds[NATIVE_SIZE] / seconds[size]:.1f}× |")
    chosen = min((size for size in sizes if np.mean(scores[size]) >= 0.95), default=NATIVE_SIZE)
    print(f"\nsmallest size with mean IoU ≥ 0.95: {chosen}")


if __name__ == "__main__":
    main()
