"""Style discovery on embeddings: k-means with k chosen by silhouette, a 2-D map, curation geometry.

Pure numpy/scikit-learn; no Django. Vectors come in L2-normalised (as every embedder returns
them), so Euclidean k-means on them ranks the same as cosine distance.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.vectors import l2_normalise

# k-means and the silhouette run on this many PCA components: the ranking of k barely moves
# and 1,280-d k-means for 29 values of k would take minutes on a laptop.
SEARCH_COMPONENTS = 16
# The silhouette is O(n²); above this many points it is estimated on a fixed random sample.
SILHOUETTE_SAMPLE = 1500
# Two k-means++ starts per k: one alone sometimes merges two true clusters.
N_INIT = 2
# t-SNE starts from this many PCA components (scikit-learn's advice for high-dimensional input).
TSNE_COMPONENTS = 50

Progress = Callable[[float, str], None]


def _noop(_fraction: float, _message: str) -> None:
    return None


@dataclass
class ClusterResult:
    k: int
    silhouette: float
    labels: np.ndarray  # (n,) cluster index per row
    centroids: np.ndarray  # (k, d) in the input space, L2-normalised
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    inertia_by_k: dict[int, float] = field(default_factory=dict)


def _reduce(x: np.ndarray, components: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n_components = min(components, x.shape[0] - 1, x.shape[1])
    if n_components >= x.shape[1]:
        return x.astype(np.float32, copy=False)
    return PCA(n_components=n_components, svd_solver="randomized", random_state=seed).fit_transform(x).astype(
        np.float32)


def cluster_embeddings(
    vectors: np.ndarray, k_min: int = 2, k_max: int = 30, seed: int = 0, progress: Progress = _noop,
) -> ClusterResult:
    """k-means for every k in [k_min, k_max]; keeps the k with the best silhouette score.

    The inertia of every k is kept too, so the page can draw the elbow curve beside the
    silhouette curve and a curator can see how clear the choice was.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = l2_normalise(np.asarray(vectors, dtype=np.float32))
    n = x.shape[0]
    if n < 3:
        raise ValueError(f"need at least 3 embeddings to cluster, got {n}")
    k_max = min(k_max, n - 1)
    k_min = max(2, min(k_min, k_max))
    reduced = _reduce(x, SEARCH_COMPONENTS, seed)
    sample = min(SILHOUETTE_SAMPLE, n)
    silhouettes: dict[int, float] = {}
    inertias: dict[int, float] = {}
    best: tuple[float, int, np.ndarray] | None = None
    ks = list(range(k_min, k_max + 1))
    for step, k in enumerate(ks):
        km = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(reduced)
        inertias[k] = float(km.inertia_)
        if len(set(km.labels_)) < 2:
            silhouettes[k] = -1.0
        else:
            silhouettes[k] = float(silhouette_score(reduced, km.labels_, sample_size=sample, random_state=seed))
        if best is None or silhouettes[k] > best[0]:
            best = (silhouettes[k], k, km.labels_.copy())
        progress((step + 1) / len(ks), f"k={k}: silhouette {silhouettes[k]:.3f}")
    assert best is not None
    score, k, labels = best
    centroids = l2_normalise(np.stack([x[labels == c].mean(axis=0) for c in range(k)]))
    return ClusterResult(k=k, silhouette=score, labels=labels.astype(np.int64), centroids=centroids,
                         silhouette_by_k=silhouettes, inertia_by_k=inertias)


def project_2d(vectors: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """2-D map coordinates, scaled to [0, 1] on both axes. ``method`` is "tsne" or "pca"."""
    from sklearn.decomposition import PCA

    x = l2_normalise(np.asarray(vectors, dtype=np.float32))
    n = x.shape[0]
    if n < 3:
        coords = np.zeros((n, 2), dtype=np.float32)
    elif method == "pca":
        coords = PCA(n_components=2, random_state=seed).fit_transform(x)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        reduced = _reduce(x, TSNE_COMPONENTS, seed)
        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                      learning_rate="auto").fit_transform(reduced)
    else:
        raise ValueError(f"unknown map method {method!r}; use 'tsne' or 'pca'")
    coords = np.asarray(coords, dtype=np.float32)
    low, high = coords.min(axis=0), coords.max(axis=0)
    return ((coords - low) / np.maximum(high - low, 1e-9)).astype(np.float32)


def match_clusters(old: np.ndarray, new: np.ndarray, min_similarity: float = 0.9) -> dict[int, int]:
    """Pair new clusters with old ones (new index -> old index) one to one by centroid cosine.

    Used to carry curator-given names over a re-clustering: only pairs whose centroids are at
    least ``min_similarity`` alike count as "the same cluster".
    """
    from scipy.optimize import linear_sum_assignment

    if len(old) == 0 or len(new) == 0 or old.shape[1] != new.shape[1]:
        return {}
    similarity = l2_normalise(new).astype(np.float32) @ l2_normalise(old).astype(np.float32).T
    rows, cols = linear_sum_assignment(-similarity)
    return {int(r): int(c) for r, c in zip(rows, cols) if similarity[r, c] >= min_similarity}


def majority(labels: Sequence[str]) -> tuple[str, float]:
    """The most common non-empty label and its share of all labels ("", 0.0 when none)."""
    counts = Counter(label for label in labels if label)
    if not counts:
        return "", 0.0
    label, count = counts.most_common(1)[0]
    return label, count / len(labels)


# A cluster's automatic name lists up to this many labels, each holding at least this share of it.
NAME_LABELS = 2
NAME_MIN_SHARE = 0.15


def default_name(labels: Sequence[str], index: int) -> str:
    """A cluster's name before a curator renames it, from its members' labels.

    The dominant labels with their shares of all members, most common first:
    "dress 62% · skirt 21%" (a label under ``NAME_MIN_SHARE`` is left out, so a pure cluster is
    "dress 97%"); "style 3" when no member has a label.
    """
    counts = Counter(label for label in labels if label)
    if not counts:
        return f"style {index}"
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{label} {round(100 * n / len(labels))}%" for rank, (label, n) in enumerate(top[:NAME_LABELS])
             if rank == 0 or n / len(labels) >= NAME_MIN_SHARE]
    return " · ".join(parts)


def neighbour_majority(vectors: np.ndarray, labels: Sequence[str], k: int = 10,
                       block: int = 1024) -> tuple[list[str], np.ndarray]:
    """For each row, the majority label among its ``k`` nearest other rows and that label's share."""
    x = l2_normalise(np.asarray(vectors, dtype=np.float32))
    n = x.shape[0]
    k = min(k, n - 1)
    names: list[str] = []
    shares = np.zeros(n, dtype=np.float32)
    if k < 1:
        return [""] * n, shares
    for start in range(0, n, block):
        sims = x[start:start + block] @ x.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -np.inf  # never one's own neighbour
        nearest = np.argpartition(-sims, k, axis=1)[:, :k]
        for offset, idx in enumerate(nearest):
            label, share = majority([labels[j] for j in idx])
            names.append(label)
            shares[start + offset] = share
    return names, shares


def near_duplicate_pairs(vectors: np.ndarray, threshold: float = 0.97,
                         block: int = 1024) -> list[tuple[int, int, float]]:
    """Row pairs (i < j) whose cosine similarity is at least ``threshold``, most similar first."""
    x = l2_normalise(np.asarray(vectors, dtype=np.float32))
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, x.shape[0], block):
        sims = x[start:start + block] @ x.T
        for i, j in zip(*np.nonzero(sims >= threshold)):
            a = start + int(i)
            if a < int(j):
                pairs.append((a, int(j), float(sims[i, j])))
    pairs.sort(key=lambda p: -p[2])
    return pairs
