"""Style clustering geometry on generated data (no database)."""
import numpy as np
import pytest

from ml.clustering import (
    cluster_embeddings,
    default_name,
    match_clusters,
    near_duplicate_pairs,
    neighbour_majority,
    project_2d,
)


def blobs(k: int, per: int = 40, dim: int = 64, seed: int = 1, spread: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    truth = np.repeat(np.arange(k), per)
    return centres[truth] + spread * rng.normal(size=(k * per, dim)) * np.linalg.norm(centres, axis=1).mean(), truth


@pytest.mark.parametrize("true_k", [3, 7])
def test_silhouette_picks_the_true_k_and_keeps_both_curves(true_k):
    x, truth = blobs(true_k)
    result = cluster_embeddings(x, k_min=2, k_max=12)
    assert result.k == true_k
    assert result.silhouette > 0.3
    assert sorted(result.silhouette_by_k) == list(range(2, 13)) == sorted(result.inertia_by_k)
    # Inertia falls as k grows (the elbow curve), and the clusters are the generated blobs.
    assert result.inertia_by_k[2] > result.inertia_by_k[true_k] > result.inertia_by_k[12] * 0.9
    for c in range(true_k):
        assert len(set(truth[result.labels == c])) == 1
    assert result.centroids.shape == (true_k, 64)
    assert np.allclose(np.linalg.norm(result.centroids, axis=1), 1, atol=1e-5)


def test_k_range_is_clipped_to_the_number_of_points():
    x, _ = blobs(2, per=3)
    result = cluster_embeddings(x, k_max=30)
    assert max(result.silhouette_by_k) == len(x) - 1


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_map_gives_two_unit_scaled_coordinates_per_row(method):
    x, truth = blobs(3, per=30)
    coords = project_2d(x, method=method)
    assert coords.shape == (90, 2)
    assert coords.min() == pytest.approx(0) and coords.max() == pytest.approx(1)
    # Blobs stay apart on the map: each point's nearest other point is from its own blob.
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1) + np.eye(90) * 9
    assert (truth[d.argmin(axis=1)] == truth).mean() > 0.95


def test_unknown_map_method_is_refused():
    with pytest.raises(ValueError, match="unknown map method"):
        project_2d(np.eye(5), method="umap")


def test_match_clusters_pairs_similar_centroids_only():
    old = np.eye(4)[:3]
    new = np.array([old[2] + 0.01, old[0], np.eye(4)[3]])
    assert match_clusters(old, new) == {0: 2, 1: 0}


def test_default_name_is_majority_label_and_share():
    assert default_name(["dress"] * 7 + ["skirt"] * 2 + [""], 0) == "dress 70% · skirt 20%"
    assert default_name(["", ""], 4) == "style 4"


def test_neighbour_majority_and_duplicates_find_planted_cases():
    x, truth = blobs(2, per=20)
    labels = ["a" if t == 0 else "b" for t in truth]
    labels[3] = "b"  # planted mislabel inside blob a
    names, shares = neighbour_majority(x, labels, k=5)
    assert names[3] == "a" and shares[3] == 1.0
    x = np.vstack([x, x[7] * 1.001])
    pairs = near_duplicate_pairs(x, threshold=0.97)
    assert pairs[0][:2] == (7, 40) and pairs[0][2] > 0.999
    assert all(p[2] >= 0.97 for p in pairs)
