"""Decode work a photo-search upload can cost: a tiny 1-bit PNG that declares 6000×6600 pixels.

Prints the CPU seconds ``ml.images.decode_image`` spends on it (as photo search decoded it before
hardening: under the 40 MP pipeline cap) and the time to refuse it under STYLESITE_SEARCH_MAX_PIXELS,
plus a 12 MP phone-sized JPEG under the search cap for comparison. No Django, no server.

    nice -n 10 .venv/bin/python bench/hardening.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ml.images import ImageRejected, decode_image  # noqa: E402

PIPELINE_MAX_PIXELS = 40_000_000  # STYLESITE_MAX_PIXELS default
SEARCH_MAX_PIXELS = 16_000_000  # STYLESITE_SEARCH_MAX_PIXELS default
WORKING_SIZE = 1024  # the search decodes at most this long side (recommender.pipeline.WORKING_SIZE)


def _encoded(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 1 if mode == "1" else (180, 40, 40)).save(buf, fmt)
    return buf.getvalue()


def _cpu(data: bytes, cap: int, repeat: int) -> tuple[float, str]:
    best, outcome = float("inf"), ""
    for _ in range(repeat):
        start = time.process_time()
        try:
            img = decode_image(data, max_pixels=cap, draft_size=WORKING_SIZE)
            img.convert("RGB")
            outcome = f"decoded to {img.size[0]}×{img.size[1]}"
        except ImageRejected as exc:
            outcome = f"refused: {exc}"
        best = min(best, time.process_time() - start)
    return best, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bomb = _encoded("1", (6000, 6600), "PNG")
    phone = _encoded("RGB", (4000, 3000), "JPEG")
    print(f"1-bit PNG 6000×6600: {len(bomb):,} bytes; JPEG 4000×3000: {len(phone):,} bytes")
    print(f"{'upload':<22}{'cap (MP)':>10}{'CPU s (best of %d)' % args.repeat:>22}  outcome")
    for name, data, cap in (("1-bit PNG 39.6 MP", bomb, PIPELINE_MAX_PIXELS), ("1-bit PNG 39.6 MP", bomb, SEARCH_MAX_PIXELS),
                            ("JPEG 12 MP", phone, SEARCH_MAX_PIXELS)):
        seconds, outcome = _cpu(data, cap, args.repeat)
        print(f"{name:<22}{cap / 1e6:>10.0f}{seconds:>22.3f}  {outcome[:70]}")


if __name__ == "__main__":
    main()
