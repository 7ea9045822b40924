"""Background removal with rembg, and the checks that tell a good cut-out from a bad one.

One rembg session per model per process, created explicitly by name: rembg's default session
would download a model, and nothing here downloads at run time. rembg finds a model's ONNX file
under ``$U2NET_HOME/models/<name>/<name>.onnx`` (``make`` links the shared ISNet file there).
"""
from __future__ import annotations

import threading

import numpy as np
from PIL import Image

# A mask covering less than this share of the image found no subject; more than this, no background.
MIN_SHARE = 0.02
MAX_SHARE = 0.98
IQR_FACTOR = 1.5

_SESSIONS: dict[str, object] = {}
_LOCK = threading.Lock()


class BackgroundModelMissing(RuntimeError):
    """The background model's file is not on this machine (it is never downloaded here)."""


def _session_class(name: str):
    from rembg.sessions import sessions_class

    for cls in sessions_class:
        if cls.name() == name:
            return cls
    known = ", ".join(sorted(cls.name() for cls in sessions_class))
    raise BackgroundModelMissing(f"unknown background model {name!r}; rembg knows: {known}")


def model_file(name: str) -> str:
    """Where rembg will load ``name`` from; raises BackgroundModelMissing when the file is absent."""
    cls = _session_class(name)
    found = cls.resolve_existing(f"{name}.onnx")
    if found is None:
        expected = f"{cls.model_dir()}/{name}.onnx"
        raise BackgroundModelMissing(
            f"background model {name!r} not found at {expected}. Put the ONNX file there (for "
            f"isnet-general-use, `make` links ../shared/models/isnet-general-use.onnx), or set U2NET_HOME."
        )
    return found


def get_session(name: str):
    """The process-wide rembg session for ``name``, created once, on the CPU."""
    with _LOCK:
        if name not in _SESSIONS:
            from rembg import new_session

            model_file(name)  # refuse before rembg could reach for the network
            _SESSIONS[name] = new_session(name, providers=["CPUExecutionProvider"])
        return _SESSIONS[name]


def remove_background(rgb: Image.Image, model: str) -> np.ndarray:
    """The subject's soft mask for ``rgb``: float32, shape (height, width), values in [0, 1]."""
    mask = get_session(model).predict(rgb.convert("RGB"))[0]
    return np.asarray(mask, dtype=np.float32) / 255.0


def foreground_share(mask: np.ndarray) -> float:
    """Share of the image the subject covers."""
    return float((mask > 0.5).mean())


def flag_suspect_masks(shares: list[float]) -> list[bool]:
    """Which masks look wrong: nearly empty, nearly full, or outliers of the collection by the IQR rule.

    The IQR rule needs a distribution; with fewer than 8 shares only the absolute bounds apply.
    """
    values = np.asarray(shares, dtype=np.float64)
    suspect = (values < MIN_SHARE) | (values > MAX_SHARE)
    if len(values) >= 8:
        q1, q3 = np.percentile(values, [25, 75])
        spread = IQR_FACTOR * (q3 - q1)
        suspect |= (values < q1 - spread) | (values > q3 + spread)
    return suspect.tolist()
