"""The one file format of the small learned heads (classifier, similarity): an npz of arrays and
dense layers plus a JSON header with a format version. Callers make the write atomic
(``recommender.artifacts.artifact_write``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

Layers = list[tuple[np.ndarray, np.ndarray]]


def heads_write(path: Path, header: dict, layers: Layers, arrays: dict[str, np.ndarray] | None = None) -> None:
    """Write ``path``: ``header`` (JSON, plus the layer count), the layers' weights and biases and
    ``arrays``."""
    out = dict(arrays or {})
    for i, (w, b) in enumerate(layers):
        out[f"w{i}"], out[f"b{i}"] = w, b
    body = json.dumps({**header, "layers": len(layers)}).encode()
    with open(path, "wb") as handle:  # a handle: np.savez would append ".npz" to a path without it
        np.savez(handle, header=np.frombuffer(body, dtype=np.uint8), **out)


def heads_read(path: Path, format_version: int) -> tuple[dict, Layers, dict[str, np.ndarray]]:
    """``(header, layers, other arrays)`` of a file ``heads_write`` wrote; ValueError when its format
    is not ``format_version``."""
    with np.load(path) as data:
        header = json.loads(bytes(data["header"]).decode())
        if header.get("format") != format_version:
            raise ValueError(f"{path} has format {header.get('format')}, expected {format_version}")
        layers = [(data[f"w{i}"], data[f"b{i}"]) for i in range(header["layers"])]
        names = {f"{p}{i}" for i in range(header["layers"]) for p in "wb"} | {"header"}
        arrays = {name: data[name] for name in data.files if name not in names}
    return header, layers, arrays
