"""The rule for tests that drive headless Chromium: under CI a missing browser is a failure, not a skip."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the ``CI`` environment variable is set to anything but empty, ``0`` or ``false``."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false")


def chromium_or_skip(path: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """``path`` (default ``CHROMIUM``) when Chromium is there; otherwise fail the test under CI and skip it
    elsewhere. A silent skip in CI would let the only end-to-end check of the photo-search page vanish.
    """
    path = path or CHROMIUM
    if Path(path).exists():
        return path
    message = f"{path} is absent (apt-get install chromium)"
    if in_ci(environ):
        pytest.fail(f"{message}; CI must run the browser tests", pytrace=False)
    pytest.skip(message)
