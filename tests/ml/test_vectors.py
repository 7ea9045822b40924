"""L2 normalisation (no database)."""
import numpy as np
import pytest

from ml.vectors import l2_normalise


def test_rows_become_unit_vectors():
    # (3, 4) has norm 5 and (0, 2) norm 2.
    x = np.array([[3.0, 4.0], [0.0, 2.0]])
    assert l2_normalise(x) == pytest.approx(np.array([[0.6, 0.8], [0.0, 1.0]]))


def test_axis_zero_normalises_columns():
    # Columns (3, 0) and (4, 2): norms 3 and sqrt(20).
    x = np.array([[3.0, 4.0], [0.0, 2.0]])
    assert l2_normalise(x, axis=0) == pytest.approx(np.array([[1.0, 4 / np.sqrt(20)], [0.0, 2 / np.sqrt(20)]]))


def test_a_zero_vector_stays_zero_and_dtype_is_kept():
    x = np.array([[0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    out = l2_normalise(x)
    assert out.dtype == np.float32
    assert out.tolist() == [[0.0, 0.0], [1.0, 0.0]]
    assert l2_normalise(np.array([0.0, 2.0])).tolist() == [0.0, 1.0]
