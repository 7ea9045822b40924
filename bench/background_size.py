"""Background removal at working sizes below ISNet's 1024²: mask IoU against the 1024² mask, and speed.

    nice -n 10 .venv/bin/python bench/background_size.py [--images 100] [--sizes 768,640,512,384]
        [--throughput-images 16]

Photos are spread over the labels of the validation split of ../shared/data/clothing-small (the
default size is chosen on validation, never on test). A mask is the model's soft mask above 0.5.
``STYLESITE_BACKGROUND_SIZE`` defaults to the smallest size whose mean IoU is ≥ 0.95.

Speed, per size: one inference at a time on every core (as photo search runs it), and two at once
at one thread each (as the pipeline's pass 2 runs a batch: ``STYLESITE_BACKGROUND_THREADS``), in
images/s and CPU seconds per image; the load average is printed beside them (other processes on
the machine slow every figure).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
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


def two_at_once(images: list[Image.Image], size: int) -> tuple[float, float]:
    """(images/s, CPU s/image) with two inferences at once, one thread each."""
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda image: remove_background(image, MODEL, size, threads=1), images))
    return len(images) / (time.perf_counter() - started), (time.process_time() - cpu) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--sizes", default="768,640,512,384")
    parser.add_argument("--throughput-images", type=int, default=16,
                        help="photos timed two at a time per size (the IoU uses all --images)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    every = [NATIVE_SIZE, *sizes]
    images = [Image.open(path).convert("RGB") for path in photos(args.images)]
    for size in every:
        remove_background(images[0], MODEL, size)  # load (and for other sizes, rewrite) once
        remove_background(images[0], MODEL, size, threads=1)
    seconds = {size: 0.0 for size in every}
    cpu = {size: 0.0 for size in every}
    scores: dict[int, list[float]] = {size: [] for size in sizes}
    for image in images:
        masks = {}
        for size in every:
            started, cpu_started = time.perf_counter(), time.process_time()
            masks[size] = remove_background(image, MODEL, size)
            seconds[size] += time.perf_counter() - started
            cpu[size] += time.process_time() - cpu_started
        for size in sizes:
            scores[size].append(iou(masks[size], masks[NATIVE_SIZE]))
        print(f"{len(scores[sizes[0]])}: " + ", ".join(f"{size}: IoU {scores[size][-1]:.3f}" for size in sizes),
              flush=True)
    timed = images[: args.throughput_images]
    pairs = {size: two_at_once(timed, size) for size in every}
    n = len(images)
    print(f"\n{n} validation photos; IoU of the mask against the {NATIVE_SIZE}² mask; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; two at once timed on {len(timed)} photos\n")
    print("| size | mean IoU | 5th pct | min | one at a time: img/s | CPU s/img | two at once ×1 thread: img/s "
          "| CPU s/img | speed-up vs 1024 one at a time |")
    print("|------|----------|---------|-----|------|------|------|------|------|")
    for size in every:
        values = np.asarray(scores.get(size, [1.0]))
        rate, pair_cpu = pairs[size]
        print(f"| {size} | {values.mean():.3f} | {np.percentile(values, 5):.3f} | {values.min():.3f} | "
              f"{n / seconds[size]:.2f} | {cpu[size] / n:.2f} | {rate:.2f} | {pair_cpu:.2f} | "
              f"{rate * seconds[NATIVE_SIZE] / n:.1f}× |")
    chosen = min((size for size in sizes if np.mean(scores[size]) >= 0.95), default=NATIVE_SIZE)
    print(f"\nsmallest size with mean IoU ≥ 0.95: {chosen} (target for pass 2 on 2 cores: ≥ 1.5 images/s)")


if __name__ == "__main__":
    main()
