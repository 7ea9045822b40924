"""Images for tests: small generated ones and the shared demo photos (no Django, so tests/ml use it too)."""
from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

# The same default as settings.STYLESITE_SHARED_DIR, read without Django.
SHARED = Path(os.environ.get("STYLESITE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
CLOTHING = SHARED / "data" / "clothing-small"


def image_bytes(color=(200, 30, 30), size=(48, 64), fmt="JPEG", seed: int = 0) -> bytes:
    """A small real image; different ``seed``s give different bytes (so no duplicate detection)."""
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste(color, (size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4))
    # An 8×8 corner block (one JPEG block) coloured from the seed survives compression.
    img.paste(((seed * 53) % 256, (seed * 97 // 256) % 256, (seed * 29) % 256), (0, 0, 8, 8))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def clothing_photos(label: str, n: int, split: str = "train") -> list[Path]:
    """The first ``n`` demo photos of ``label`` in ``split`` (real garments, real JPEGs)."""
    return sorted((CLOTHING / split / label).glob("*.jpg"))[:n]
