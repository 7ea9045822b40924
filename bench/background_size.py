"""Background removal at working sizes below ISNet's 1024²: mask IoU against the 1024² mask, and speed.

    nice -n 10 .venv/bin/python bench/background_size.py [--images 100] [--sizes 768,640,512,384]
        [--int8-sizes 1024,768] [--throughput-images 16]

Photos are spread over the labels of the validation split of ../shared/data/clothing-small (the
default size is chosen on validation, never on test). A mask is the model's soft mask above 0.5.
``STYLESITE_BACKGROUND_SIZE`` and ``STYLESITE_BACKGROUND_PRECISION`` default to the fastest row whose
mean IoU is ≥ 0.95 (int8 rows: ``ml.background.quantized_model``).

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


def two_at_once(images: list[Image.Image], config: tuple[int, str]) -> tuple[float, float]:
    """(images/s, CPU s/image) with two inferences at once, one thread each."""
    size, precision = config
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda image: remove_background(image, MODEL, size, threads=1, precision=precision), images))
    return len(images) / (time.perf_counter() - started), (time.process_time() - cpu) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--sizes", default="768,640,512,384", help="fp32 sizes compared with fp32 at 1024²")
    parser.add_argument("--int8-sizes", default="1024,768", help="int8 sizes compared with fp32 at 1024²")
    parser.add_argument("--throughput-images", type=int, default=16,
                        help="photos timed two at a time per size (the IoU uses all --images)")
    args = parser.parse_args()
    reference = (NATIVE_SIZE, "fp32")
    configs = [*((int(size), "fp32") for size in args.sizes.split(",") if size),
               *((int(size), "int8") for size in args.int8_sizes.split(",") if size)]
    every = [reference, *configs]
    images = [Image.open(path).convert("RGB") for path in photos(args.images)]
    for size, precision in every:  # load (and for other sizes, rewrite; for int8, quantise) once
        remove_background(images[0], MODEL, size, precision=precision)
        remove_background(images[0], MODEL, size, threads=1, precision=precision)
    seconds = {config: 0.0 for config in every}
    cpu = {config: 0.0 for config in every}
    scores: dict[tuple[int, str], list[float]] = {config: [] for config in configs}
    for image in images:
        masks = {}
        for config in every:
            started, cpu_started = time.perf_counter(), time.process_time()
            masks[config] = remove_background(image, MODEL, config[0], precision=config[1])
            seconds[config] += time.perf_counter() - started
            cpu[config] += time.process_time() - cpu_started
        for config in configs:
            scores[config].append(iou(masks[config], masks[reference]))
        print(f"{len(scores[configs[0]])}: " + ", ".join(f"{size} {precision}: IoU {scores[(size, precision)][-1]:.3f}"
                                                         for size, precision in configs), flush=True)
    timed = images[: args.throughput_images]
    pairs = {config: two_at_once(timed, config) for config in every}
    n = len(images)
    print(f"\n{n} validation photos; IoU of the mask against the fp32 {NATIVE_SIZE}² mask; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; two at once timed on {len(timed)} photos\n")
    print("| size | precision | mean IoU | 5th pct | min | one at a time: img/s | CPU s/img | two at once ×1 thread: "
          "img/s | CPU s/img | speed-up vs fp32 1024 one at a time |")
    print("|------|------|----------|---------|-----|------|------|------|------|------|")
    for config in every:
        values = np.asarray(scores.get(config, [1.0]))
        rate, pair_cpu = pairs[config]
        print(f"| {config[0]} | {config[1]} | {values.mean():.3f} | {np.percentile(values, 5):.3f} | "
              f"{values.min():.3f} | "
              f"{n / seconds[config]:.2f} | {cpu[config] / n:.2f} | {rate:.2f} | {pair_cpu:.2f} | "
              f"{rate * seconds[reference] / n:.1f}× |")
    good = [config for config in every if np.mean(scores.get(config, [1.0])) >= 0.95]
    chosen = max(good, key=lambda config: pairs[config][0])
    print(f"\nfastest (two at once) with mean IoU ≥ 0.95: {chosen[0]} {chosen[1]} "
          "(target for pass 2 on 2 cores: ≥ 1.5 images/s)")


if __name__ == "__main__":
    main()
