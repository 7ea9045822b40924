"""Model files derived on this machine (a rewritten graph, an int8 copy): written once into the model
cache, atomically and under a lock, and int8 copies made the same way for every model.

The int8 copies are static QDQ quantisations: per-channel int8 weights and uint8 activations whose
ranges are the min/max seen on the bundled calibration photos (``CALIBRATION_DIR``). On CPUs with
int8 dot-product instructions (VNNI) they run 2.5-3x faster than float32.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

# One garment photo per clothing-small label (CC0); their activations set the int8 ranges.
CALIBRATION_DIR = Path(__file__).with_name("calibration")


def calibration_photos() -> list[Path]:
    photos = sorted(CALIBRATION_DIR.glob("*.jpg"))
    if not photos:
        raise FileNotFoundError(f"no calibration photos in {CALIBRATION_DIR}")
    return photos


def written_once(target: Path, write: Callable[[Path], None]) -> Path:
    """``target``, written by ``write(partial_path)`` if absent, then renamed into place: a half-written
    file is never read, and processes that start together wait for the one that writes."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            # A unique partial name: workers in several containers may share the cache and a pid.
            handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
            os.close(handle)
            partial = Path(name)
            try:
                write(partial)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
    return target


def quantize_int8(float32: Path, target: Path, feeds: Iterable[dict[str, np.ndarray]], per_pass: int = 0,
                  reduce_range: bool = False) -> None:
    """Write an int8 (QDQ) copy of the all-float32 graph at ``float32`` to ``target``; ``feeds`` are
    the calibration inputs. ``per_pass`` > 0 collects activations that many inputs at a time (a large
    graph's all at once would take GBs); it must not divide the number of feeds (onnxruntime then
    reports no data).

    ``reduce_range``: 7-bit weights. On x86 CPUs without VNNI (AVX2 only), onnxruntime multiplies
    uint8 activations by int8 weights with ``vpmaddubsw``, whose 16-bit pair sums saturate; with 7-bit
    weights they cannot, so every x86 CPU computes the same integers. Without it, on such a CPU
    EfficientNet-Lite0's int8 vectors were as far as cosine 0.65 from the float32 ones (mean 0.92),
    so vectors written on one machine would not match queries embedded on another."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quantize-") as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(float32), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.MinMax, reduce_range=reduce_range,
                        extra_options={"CalibMaxIntermediateOutputs": per_pass} if per_pass else {})
