"""Throughput of the image pipeline's stages on this machine, then end to end; prints tables.

    .venv/bin/python bench/ingest.py [--images 64] [--bg-images 8] [--rss-images 300]
    .venv/bin/python bench/ingest.py --end-to-end-only [--e2e-images 300] [--e2e-bg-images 24]

End to end: photos imported through ``catalog.services.records_import`` (as ``import_catalog`` does) into a
throwaway database, processed by a real Celery worker (one process, as ``make run`` starts it) on a
private queue, timed from the first import to the last vector in Postgres.

Stages run on real photos from ../shared/data/clothing-small (and synthetic 3000×4000 JPEGs for
the decode stage), through the same ``ml`` functions the Celery task calls. The embedding stage is
timed for ResNet-50 (random weights: the arithmetic is the same as with ImageNet weights, which are
not on this machine) and efficientnet-lite0, on ONNX Runtime and on eager torch in the same run.
FP32 peak is measured here as the best of several large float32 matrix products (torch sgemm on
all cores); a model's GFLOP/s is its counted FLOPs per image × images/s.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml import background, embedders  # noqa: E402
from ml.images import (  # noqa: E402
    composite_on_white,
    decode_image,
    encode_png_fast,
    encode_webp,
    subject_crop,
)

SHARED = Path(os.environ.get("STYLESITE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
MAX_PIXELS = 40_000_000
WORKING_SIZE = 1024


def photos(n: int) -> list[bytes]:
    paths = sorted((SHARED / "data" / "clothing-small" / "train").glob("*/*.jpg"))
    step = max(1, len(paths) // n)
    return [p.read_bytes() for p in paths[::step][:n]]


def big_jpegs(n: int) -> list[bytes]:
    """Photo-like 3000×4000 JPEGs: a real garment photo upscaled, plus noise so it compresses like one."""
    rng = np.random.default_rng(0)
    base = Image.open(io.BytesIO(photos(1)[0])).convert("RGB").resize((3000, 4000), Image.Resampling.BILINEAR)
    out = []
    for _ in range(n):
        noisy = np.asarray(base, dtype=np.int16) + rng.integers(-6, 7, (4000, 3000, 3), dtype=np.int16)
        buf = io.BytesIO()
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def timed(fn, items) -> tuple[list, float]:
    started = time.perf_counter()
    results = [fn(x) for x in items]
    return results, time.perf_counter() - started


def measure_peak_gflops() -> float:
    """Best of several 4096² float32 matrix products through torch (oneDNN/MKL, all cores)."""
    import torch

    a = torch.randn(4096, 4096)
    a @ a
    best = 0.0
    for _ in range(5):
        started = time.perf_counter()
        a @ a
        best = max(best, 2 * 4096 ** 3 / (time.perf_counter() - started) / 1e9)
    return best


def model_gflop(name: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = embedders.torch_model(name) if name != "resnet50" else resnet50_random()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 224, 224))
    return counter.get_total_flops() / 1e9


def resnet50_random():
    import torch
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    model.fc = torch.nn.Identity()
    return model.eval()


def resnet50_runners() -> dict:
    """ORT and eager runners for a random-weights ResNet-50 (same FLOPs as the ImageNet one)."""
    import onnxruntime as ort
    import torch

    model = resnet50_random()
    path = embedders.cache_dir() / "bench-resnet50-random.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        import warnings

        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(path), input_names=["input"],
                              output_names=["features"], dynamic_axes={"input": {0: "n"}}, opset_version=17,
                              dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def eager(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return {"onnx": lambda batch: session.run(None, {"input": batch})[0], "torch": eager}


def embed_rate(run, batch: np.ndarray, repeats: int = 3) -> float:
    run(batch[:4])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - started)
    return len(batch) / min(times)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def row(stage: str, n: int, seconds: float, extra: str = "") -> None:
    print(f"| {stage:<44} | {n:>5} | {n / seconds:>9.1f} | {1000 * seconds / n:>9.1f} | {extra} |")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants (a Celery
    worker and its pool child): a figure other processes on the machine inflate far less than time."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            stack += [int(child) for child in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _wait_for(condition, limit_s: float = 600) -> float:
    """Poll ``condition`` every 0.1 s (at most ``limit_s``); returns the time it held."""
    deadline = time.perf_counter() + limit_s
    while not condition() and time.perf_counter() < deadline:
        time.sleep(0.1)
    return time.perf_counter()


def pipeline_end_to_end(n_plain: int, n_bg: int) -> None:
    """Import → worker → vector in Postgres, without and with background removal (see the docstring)."""
    import subprocess
    from urllib.parse import urlsplit, urlunsplit

    run = f"bench{os.getpid()}"
    os.environ.update(DJANGO_SETTINGS_MODULE="stylesite.settings.test", STYLESITE_TEST_RUN=run)
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction
    from django.db.models import Q

    from catalog.lifecycle import image_mark_pending
    from catalog.models import ItemImage
    from catalog.importers import ImportRecord
    from catalog.services import collection_create, records_import
    from stylesite.celery import app

    old_name = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DATABASE_URL": urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + name)),
           "STYLESITE_STYLES_AUTO_MIN_IMAGES": "1000000"}
    node = f"{run}@localhost"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "stylesite", "worker", "--concurrency=1", "-n", node,
         "-Q", f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.STYLESITE_REFINE_QUEUE}", "--loglevel=WARNING"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            if app.control.ping(destination=[node], timeout=0.5):
                break
        paths = sorted((SHARED / "data" / "clothing-small" / "train").glob("*/*.jpg"))
        print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; CPU ms/image: the importer "
              "(the import call) and the worker (during the end-to-end run)")
        print(f"\n| {'end to end (import → vector in Postgres)':<44} | {'n':>5} | {'images/s':>9} | "
              f"{'import/s':>9} | {'worker/s':>9} | CPU ms/img import | worker | target |")
        print(f"|{'-' * 46}|{'-' * 7}|{'-' * 11}|{'-' * 11}|{'-' * 11}|------|------|--------|")
        offset = 0
        for label, n, cut, target in (("no background removal", n_plain, False, 60.0),
                                      ("with background removal", n_bg, True, 1.5)):
            collection = collection_create(name=label, slug=f"e2e-{int(cut)}", remove_background=cut)
            batch, offset = paths[offset:offset + n], offset + n
            started, import_cpu, worker_cpu = time.perf_counter(), time.process_time(), tree_cpu_s(worker.pid)
            records_import(collection, [ImportRecord(path, label=path.parent.name, split="train") for path in batch],
                           lambda *_row: None)
            imported, import_cpu = time.perf_counter() - started, time.process_time() - import_cpu
            # Done: embedded, and with background removal also cut out and embedded again (pass 2).
            images = ItemImage.objects.filter(collection=collection)
            done = images.filter(Q(status="failed") | Q(status="ready", refined=True))
            end_to_end_s = _wait_for(lambda: done.count() >= n) - started
            worker_cpu = tree_cpu_s(worker.pid) - worker_cpu
            # The worker alone: every image queued at once (as after a fast import), timed to the last vector.
            with transaction.atomic():
                image_mark_pending(ids=list(images.values_list("pk", flat=True)))
            requeued = time.perf_counter()
            worker_s = _wait_for(lambda: done.count() >= n) - requeued
            print(f"| {label:<44} | {n:>5} | {n / end_to_end_s:>9.1f} | {n / imported:>9.1f} | "
                  f"{n / worker_s:>9.1f} | {1000 * import_cpu / n:.0f} | {1000 * worker_cpu / n:.0f} | ≥ {target} |"
                  f" (load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        worker.terminate()
        worker.wait(60)
        connection.creation.destroy_test_db(old_name, verbosity=0)
        import shutil

        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--bg-images", type=int, default=8)
    parser.add_argument("--rss-images", type=int, default=300)
    parser.add_argument("--e2e-images", type=int, default=300)
    parser.add_argument("--e2e-bg-images", type=int, default=24)
    parser.add_argument("--end-to-end-only", action="store_true", help="skip the per-stage table")
    args = parser.parse_args()
    if args.end_to_end_only:
        pipeline_end_to_end(args.e2e_images, args.e2e_bg_images)
        return

    print(f"cores: {os.cpu_count()}; onnxruntime and torch use all of them")
    peak = measure_peak_gflops()
    print(f"FP32 peak (best 4096² sgemm through torch): {peak:.0f} GFLOP/s (run on an idle machine)\n")
    print(f"| {'stage':<44} | {'n':>5} | {'images/s':>9} | {'ms/image':>9} | notes |")
    print(f"|{'-' * 46}|{'-' * 7}|{'-' * 11}|{'-' * 11}|-------|")

    data = photos(args.images)
    decoded, seconds = timed(lambda d: decode_image(d, MAX_PIXELS, draft_size=WORKING_SIZE), data)
    row("decode demo photo (≈400 px JPEG)", len(data), seconds)
    crops, seconds = timed(lambda img: subject_crop(img, None, size=224), decoded)
    row("pad + resize to 224 (no mask)", len(data), seconds)

    big = big_jpegs(4)
    for label, draft in (("3000×4000 JPEG decode, plain", None), ("3000×4000 JPEG decode, draft 1024", WORKING_SIZE),
                         ("3000×4000 JPEG decode+preprocess, draft 224", 224)):
        fn = (lambda d, draft=draft: subject_crop(decode_image(d, MAX_PIXELS, draft_size=draft), None, 224)) \
            if "preprocess" in label else (lambda d, draft=draft: decode_image(d, MAX_PIXELS, draft_size=draft))
        fn(big[0])
        _, seconds = timed(fn, big)
        row(label, len(big), seconds, "target ≤ 40 ms" if "preprocess" in label else "")

    # Background removal: the ONNX run versus everything rembg does around it.
    session = background.get_session("isnet-general-use")
    inner = session.inner_session
    inference = {"s": 0.0}
    original_run = inner.run

    def counted_run(*a, **kw):
        started = time.perf_counter()
        try:
            return original_run(*a, **kw)
        finally:
            inference["s"] += time.perf_counter() - started

    inner.run = counted_run
    rgb = [img.convert("RGB") for img in decoded[: args.bg_images]]
    background.remove_background(rgb[0], "isnet-general-use")
    inference["s"] = 0.0
    masks, seconds = timed(lambda img: background.remove_background(img, "isnet-general-use"), rgb)
    inner.run = original_run
    outside = (seconds - inference["s"]) / seconds
    row("background removal (ISNet 1024², rembg)", len(rgb), seconds,
        f"outside inference {100 * outside:.1f}% (target ≤ 15%)")
    cutouts, seconds = timed(lambda pair: composite_on_white(*pair), list(zip(rgb, masks)))
    row("cut-out on white", len(rgb), seconds)
    _, seconds = timed(lambda img: encode_webp(img), cutouts)
    row("save cut-out (WebP, method 2)", len(rgb), seconds)
    _, seconds = timed(lambda m: encode_png_fast(Image.fromarray((m * 255).astype(np.uint8))), masks)
    row("save mask (PNG, level 1)", len(rgb), seconds)
    big_rgb = decode_image(big[0], MAX_PIXELS).convert("RGBA")
    _, seconds = timed(lambda img: encode_png_fast(img), [big_rgb])
    row("save 3000×4000 RGBA (PNG, level 1)", 1, seconds)
    _, seconds = timed(lambda img: encode_webp(img.convert("RGB")), [big_rgb])
    row("save 3000×4000 (WebP, method 2)", 1, seconds)

    # Embedding: ONNX Runtime versus eager torch, the same weights, the same batch.
    lite = embedders.get_spec("efficientnet-lite0")
    batch = embedders.preprocess((crops * 2)[:32], lite)
    lite_runners = {backend: embedders.get_embedder("efficientnet-lite0", backend=backend).embed_array
                    for backend in ("onnx", "torch")}
    lite_runners["onnx int8"] = embedders.get_embedder("efficientnet-lite0-int8").embed_array
    for name, runners in (("resnet50", resnet50_runners()), ("efficientnet-lite0", lite_runners)):
        gflop = model_gflop(name)
        rates = {backend: embed_rate(run, batch) for backend, run in runners.items()}
        for backend, rate in rates.items():
            row(f"embed {name}, {backend}, batch 32", len(batch), len(batch) / rate,
                f"{gflop:.2f} GFLOP/img, {gflop * rate:.0f} GFLOP/s = {100 * gflop * rate / peak:.0f}% of peak"
                + (" (int8 arithmetic against the fp32 peak)" if "int8" in backend else "")
                + (f", {rates['onnx'] / rates['torch']:.2f}× eager" if backend == "onnx" else ""))

    # End to end without and with background removal (decode → [mask] → crop → embed), one by one.
    embedder = embedders.get_embedder("efficientnet-lite0")

    def end_to_end(data: bytes, cut: bool) -> np.ndarray:
        img = decode_image(data, MAX_PIXELS, draft_size=WORKING_SIZE).convert("RGB")
        mask = background.remove_background(img, "isnet-general-use") if cut else None
        source = composite_on_white(img, mask) if cut else img
        return embedder.embed([subject_crop(source, mask, 224)])[0]

    _, seconds = timed(lambda d: end_to_end(d, False), data)
    row("end to end, no background removal", len(data), seconds, "efficientnet-lite0, one image at a time")
    _, seconds = timed(lambda d: end_to_end(d, True), data[: args.bg_images])
    row("end to end, with background removal", args.bg_images, seconds, "efficientnet-lite0")

    # Memory: a worker's resident set across many images must stay flat.
    stream = (photos(args.rss_images) * 2)[: args.rss_images]
    for d in stream[:20]:
        end_to_end(d, False)
    before = rss_mb()
    samples = []
    for i, d in enumerate(stream):
        end_to_end(d, False)
        if i % 50 == 49:
            samples.append(rss_mb())
    after = statistics.median(samples[-2:]) if len(samples) >= 2 else rss_mb()
    print(f"\nresident memory over {len(stream)} images (after 20 warm-up): {before:.0f} MB → {after:.0f} MB "
          f"({100 * (after - before) / before:+.1f}%, target ≤ +10%); samples every 50: "
          + ", ".join(f"{s:.0f}" for s in samples))
    pipeline_end_to_end(args.e2e_images, args.e2e_bg_images)


if __name__ == "__main__":
    main()
