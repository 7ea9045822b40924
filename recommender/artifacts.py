"""Fitted models stored as versioned files, and the one bounded cache through which processes load them.

Models (style classifier heads, preference predictors) are fitted in Celery and written here
atomically; web processes only ever *load* them, through ``artifact_load``, whose LRU cache holds
at most ``STYLESITE_ARTIFACT_CACHE_SIZE`` models per process and evicts the least recently used.
An artifact's path names its version, so a new fit is a new key and the old one ages out.
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")

_lock = threading.Lock()
_cache: OrderedDict[Hashable, object] = OrderedDict()


def artifact_path(relative: str) -> Path:
    """Where an artifact lives under ``STYLESITE_ARTIFACT_DIR``."""
    return Path(settings.STYLESITE_ARTIFACT_DIR) / relative


def artifact_write(relative: str, write: Callable[[Path], None]) -> Path:
    """Let ``write`` fill a temporary file, then move it into place in one rename (never half a file)."""
    path = artifact_path(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def artifact_load(key: Hashable, load: Callable[[], T]) -> T:
    """The object cached under ``key``, loading it with ``load()`` on a miss (least recently used evicted)."""
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]  # type: ignore[return-value]
    value = load()
    with _lock:
        _cache[key] = value
        _cache.move_to_end(key)
        while len(_cache) > settings.STYLESITE_ARTIFACT_CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def artifact_cache_keys() -> list[Hashable]:
    """The keys cached in this process, least recently used first (for tests and the jobs page)."""
    with _lock:
        return list(_cache)
