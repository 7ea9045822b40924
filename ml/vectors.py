"""Vector helpers shared across ``ml``. Pure numpy."""
from __future__ import annotations

import numpy as np


def l2_normalise(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """``x`` scaled to unit L2 norm along ``axis``, so dot products of the results are cosines.

    Norms are floored at ``eps``: a zero vector stays zero instead of becoming NaN. The dtype
    follows numpy's division rules (float32 in, float32 out); callers that need a fixed dtype
    cast the result.
    """
    x = np.asarray(x)
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), eps)
