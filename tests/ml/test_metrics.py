"""Retrieval metrics against values worked out by hand (no database)."""
import numpy as np
import pytest

from ml.metrics import retrieval_metrics

# One ranked list used at several cut-offs: relevant at ranks 1, 3 and 5; 4 relevant items exist.
RANKED = [True, False, True, False, True]


def test_metrics_at_full_depth():
    # k=5: 3 hits of 5 -> P = 3/5; 3 of the 4 relevant found -> R = 3/4.
    # Precision at each hit: rank 1: 1/1, rank 3: 2/3, rank 5: 3/5; sum = 1 + 2/3 + 3/5 = 34/15.
    # AP = (34/15) / min(5, 4) = 34/60 = 17/30.
    assert retrieval_metrics(RANKED, 5, 4) == pytest.approx((3 / 5, 3 / 4, 17 / 30))


def test_metrics_at_a_shorter_cut_off():
    # k=3: ranks 1-3 = (hit, miss, hit) -> P = 2/3, R = 2/4 = 1/2.
    # AP = (1/1 + 2/3) / min(3, 4) = (5/3) / 3 = 5/9.
    assert retrieval_metrics(RANKED, 3, 4) == pytest.approx((2 / 3, 1 / 2, 5 / 9))
    # k=1: the first result is a hit -> P = 1, R = 1/4, AP = (1/1) / min(1, 4) = 1.
    assert retrieval_metrics(RANKED, 1, 4) == pytest.approx((1.0, 1 / 4, 1.0))


def test_perfect_list_with_fewer_relevant_items_than_k_has_ap_one():
    # Hits at ranks 1 and 2 of k=4, and only 2 relevant items exist: P = 2/4, R = 2/2,
    # AP = (1/1 + 2/2) / min(4, 2) = 2/2 = 1.
    assert retrieval_metrics([True, True, False, False], 4, 2) == pytest.approx((0.5, 1.0, 1.0))


def test_a_late_hit_is_worth_little_average_precision():
    # The only relevant item at rank 4 of k=4: P = 1/4, R = 1/1, AP = (1/4) / min(4, 1) = 1/4.
    assert retrieval_metrics([False, False, False, True], 4, 1) == pytest.approx((0.25, 1.0, 0.25))


def test_hits_after_k_do_not_count():
    # k=2 sees (miss, miss); the hit at rank 3 is past the cut-off: all zero.
    assert retrieval_metrics([False, False, True], 2, 1) == (0.0, 0.0, 0.0)


def test_a_short_list_counts_missing_ranks_as_misses():
    # One result (a hit) where k=3 were asked for: P = 1/3, R = 1/2, AP = (1/1) / min(3, 2) = 1/2.
    assert retrieval_metrics([True], 3, 2) == pytest.approx((1 / 3, 1 / 2, 1 / 2))
    assert retrieval_metrics([], 2, 2) == (0.0, 0.0, 0.0)


def test_no_relevant_items_in_the_gallery_scores_zero_not_nan():
    assert retrieval_metrics([False, False], 2, 0) == (0.0, 0.0, 0.0)


def test_numpy_input_and_plain_float_output():
    result = retrieval_metrics(np.array(RANKED), 3, 4)
    assert result == pytest.approx((2 / 3, 1 / 2, 5 / 9))
    assert all(type(value) is float for value in result)


def test_k_below_one_is_rejected():
    with pytest.raises(ValueError, match="k must be at least 1"):
        retrieval_metrics(RANKED, 0, 4)
