"""ml.similarity on synthetic data: the blend identity, fitting and choosing, artifacts, the composed embedder."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml import embedders, metrics, similarity
from ml.vectors import l2_normalise

CLASSES = ("a", "b", "c", "d")


def _data(n_per_class: int, seed: int, dim: int = 64) -> tuple[np.ndarray, list[str]]:
    """Labels live in 4 weak dimensions; the other 60 carry label-free 'looks' noise that dominates
    raw cosine, so a learned space beats raw by a wide margin."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for c, label in enumerate(CLASSES):
        block = rng.normal(0.0, 1.0, (n_per_class, dim))
        block[:, c] += 2.0
        block[:, :4] *= 0.6
        x.append(block)
        y += [label] * n_per_class
    return l2_normalise(np.vstack(x).astype(np.float32)), y


def test_served_cosine_is_the_weighted_sum_of_raw_and_learned_cosines():
    rng = np.random.default_rng(0)
    raw = l2_normalise(rng.normal(size=(5, 16)).astype(np.float32))
    learned = l2_normalise(rng.normal(size=(5, 3)).astype(np.float32))
    served = similarity.blend(raw, learned, 0.3)
    assert served.shape == (5, 19)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(served @ served.T, 0.3 * raw @ raw.T + 0.7 * learned @ learned.T, atol=1e-6)


def test_retrieval_measures_on_a_hand_checked_case():
    gallery = np.eye(3, dtype=np.float32)
    queries = np.array([[1.0, 0.1, 0.0], [0.0, 0.2, 1.0]], dtype=np.float32)
    nearest = metrics.top_k(queries, gallery, 2)
    assert nearest.tolist() == [[0, 1], [2, 1]]
    scores = metrics.retrieval_scores(nearest, ["x", "y"], ["x", "y", "x"], ks=(1, 2))
    assert scores == {"p@1": 0.5, "r@1": 0.25, "map@1": 0.5, "p@2": 0.5, "r@2": 0.75, "map@2": 0.5}
    assert metrics.overlap_at_k(nearest, np.array([[1, 0], [0, 2]]), k=2) == 0.75


def test_fit_head_beats_raw_on_validation_and_keeps_overlap_with_raw():
    tx, ty = _data(60, seed=1)
    vx, vy = _data(20, seed=2)
    head, rows = similarity.fit_head(tx, ty, vx, vy, base="b", base_version="v1")
    assert [r["kind"] for r in rows] == list(similarity.KINDS)
    chosen = next(r for r in rows if r["kind"] == head.kind)
    best = max((b for r in rows for b in r["by_weight"] if b["overlap@10"] >= similarity.MIN_OVERLAP),
               key=lambda b: b["p@10"])
    assert chosen["served_p@10"] >= best["p@10"] - best["p@10_se"] - 1e-4  # rows are rounded to 4 places
    assert chosen["overlap@10"] >= similarity.MIN_OVERLAP
    assert all(r["overlap@10"] <= chosen["overlap@10"] for r in rows
               if r["served_p@10"] >= best["p@10"] - best["p@10_se"] - 1e-4)
    raw_p10 = next(b for b in chosen["by_weight"] if b["weight"] == 1.0)["p@10"]
    assert chosen["served_p@10"] >= raw_p10 + 0.2
    assert head.dimension == 64 + head.learned_dimension
    served = head.serve(vx)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)
    assert head.model_name == f"b+sim-{head.fingerprint[:12]}" and similarity.is_head_model(head.model_name)


def test_one_standard_error_rule_prefers_visual_likeness_among_scores_it_cannot_tell_apart():
    rows = [{"w": 0.2, "p@10": 0.90, "p@10_se": 0.02}, {"w": 0.6, "p@10": 0.885, "p@10_se": 0.02},
            {"w": 1.0, "p@10": 0.87, "p@10_se": 0.02}]
    assert similarity.within_one_se(rows, prefer="w")["w"] == 0.6
    assert similarity.within_one_se(rows, prefer="w", floor=0.89)["w"] == 0.2
    assert similarity.within_one_se(rows, prefer="w", floor=0.95)["w"] == 0.2  # none reaches it: the best
    rows[0]["p@10_se"] = 0.04
    assert similarity.within_one_se(rows, prefer="w")["w"] == 1.0


def test_blend_weight_stays_raw_when_the_learned_gain_is_within_noise():
    """A learned space that helps a few queries a little must not pull the served lists off raw."""
    x, y = _data(40, seed=3)
    qx, qy = _data(15, seed=4)
    rng = np.random.default_rng(5)
    # The learned space: raw plus a small label signal, so some blend gains a little P@10.
    onehot = {c: np.eye(len(CLASSES))[i] for i, c in enumerate(CLASSES)}
    nudge = 0.05

    def learned(v: np.ndarray, labels: list[str]) -> np.ndarray:
        return l2_normalise(np.hstack([v, nudge * np.stack([onehot[c] for c in labels])
                                       + 0.02 * rng.normal(size=(len(v), len(CLASSES)))]).astype(np.float32))

    rows = similarity.weight_rows(qx, x, learned(qx, qy), learned(x, y), np.asarray(qy), np.asarray(y))
    raw = next(r for r in rows if r["weight"] == 1.0)
    best = max(rows, key=lambda r: r["p@10"])
    assert best["p@10"] > raw["p@10"]  # the plain best would blend learned similarity in ...
    assert best["p@10"] - raw["p@10"] < best["p@10_se"]  # ... for a gain inside its own noise
    assert similarity.choose_weight(rows)["weight"] == 1.0


def test_fingerprint_changes_with_labels_and_vectors_only():
    tx, ty = _data(10, seed=1)
    vx, vy = _data(3, seed=2)
    same = similarity.fingerprint(tx, ty, vx, vy, "b/v1")
    assert similarity.fingerprint(tx.copy(), list(ty), vx, vy, "b/v1") == same
    relabelled = ["b", *ty[1:]]  # the first item was an "a"
    assert similarity.fingerprint(tx, relabelled, vx, vy, "b/v1") != same
    assert similarity.fingerprint(tx * 0.5, ty, vx, vy, "b/v1") != same
    assert similarity.fingerprint(tx, ty, vx, vy, "b/v2") != same


def test_fit_head_needs_two_labels_and_known_kinds():
    tx, _ = _data(5, seed=1)
    with pytest.raises(ValueError, match="at least two labels"):
        similarity.fit_head(tx, ["a"] * len(tx), tx[:0], [], base="b", base_version="v1")
    with pytest.raises(ValueError, match="unknown head kind"):
        similarity.fit_head(tx, ["a", "b"] * (len(tx) // 2), tx[:0], [], base="b", base_version="v1", kinds=("pca",))


def test_head_round_trips_through_its_artifact(tmp_path):
    tx, ty = _data(30, seed=3)
    head, _ = similarity.fit_head(tx, ty, tx[:0], [], base="b", base_version="v1", kinds=("lda",))
    path = tmp_path / "head.npz"
    head.save(path)
    loaded = similarity.SimilarityHead.load(path)
    assert (loaded.kind, loaded.weight, loaded.fingerprint, loaded.classes) == ("lda", head.weight, head.fingerprint,
                                                                                 list(CLASSES))
    np.testing.assert_array_equal(loaded.serve(tx), head.serve(tx))


@pytest.fixture
def tiny_backbone():
    """A registered 48-d 'backbone' (4×4 average pool of the input), so composing needs no weights."""
    import torch

    spec = embedders.EmbedderSpec(name="tiny-test", version="t1", dimension=48, input_size=32,
                                  mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), description="test")
    embedders.register(spec, lambda: torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten()))
    yield spec
    embedders._REGISTRY.pop("tiny-test", None)


def test_registered_head_embeds_images_in_the_served_space(tiny_backbone):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(40)]
    base = embedders.get_embedder("tiny-test", backend="torch")
    raw = base.embed(images)
    head, _ = similarity.fit_head(raw, ["a", "b"] * 20, raw[:0], [], base="tiny-test", base_version="t1",
                                  kinds=("lda",))
    name = similarity.register_head(head)
    try:
        composed = embedders.get_embedder(name, backend="torch")
        assert composed.spec.dimension == 48 + head.learned_dimension
        assert composed.spec.version.startswith("t1+sim-")
        np.testing.assert_allclose(composed.embed(images[:3]), head.serve(raw[:3]), atol=1e-5)
    finally:
        embedders._REGISTRY.pop(name, None)
    stale = similarity.SimilarityHead(**{**head.__dict__, "base_version": "t0"})
    with pytest.raises(ValueError, match="registry has t1"):
        similarity.register_head(stale)


def test_an_unknown_name_is_offered_to_resolvers_once_registered(tiny_backbone):
    asked = []

    def resolver(name: str) -> bool:
        asked.append(name)
        if name != "tiny-test+alias":
            return False
        embedders.register(embedders.EmbedderSpec(**{**tiny_backbone.__dict__, "name": name}), lambda: None)
        return True

    embedders.add_resolver(resolver)
    try:
        assert embedders.get_spec("tiny-test+alias").dimension == 48
        assert embedders.get_spec("tiny-test+alias").dimension == 48  # registered now: not asked again
        with pytest.raises(embedders.UnknownModel):
            embedders.get_spec("nothing-like-it")
        assert asked == ["tiny-test+alias", "nothing-like-it"]
    finally:
        embedders._RESOLVERS.remove(resolver)
        embedders._REGISTRY.pop("tiny-test+alias", None)
