"""The style head: selection on validation, metrics, artifact round trip, fingerprint (no database)."""
import numpy as np
import pytest

from ml.classifier import StyleHead, evaluate, fingerprint, train_head
from ml.plots import confusion_svg


def labelled(n_per: dict[str, int], dim: int = 32, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    centres = {c: rng.normal(size=dim) for c in n_per}
    xs, ys = [], []
    for c, n in n_per.items():
        xs.append(centres[c] + noise * rng.normal(size=(n, dim)))
        ys += [c] * n
    return np.vstack(xs).astype(np.float32), ys


def test_head_is_chosen_on_validation_and_beats_majority_on_imbalanced_classes():
    counts = {"dress": 300, "hat": 30, "shoes": 60}
    tx, ty = labelled(counts, seed=0)
    vx, vy = labelled({c: 40 for c in counts}, seed=0)
    vx = vx + 0  # same centres (same seed), fresh noise below
    vx += np.random.default_rng(5).normal(size=vx.shape).astype(np.float32) * 0.2
    head, candidates = train_head(tx, ty, vx, vy)
    assert {c["kind"] for c in candidates} == {"logreg", "mlp"}
    assert head.kind in {"logreg", "mlp"}
    best = max(c["val_macro_f1"] for c in candidates)
    assert head.meta["candidates"] and evaluate(head, vx, vy).macro_f1 == pytest.approx(best)
    report = evaluate(head, vx, vy)
    # Balanced validation: predicting the majority class scores 1/3; the minority class is found.
    assert report.accuracy > 0.9 and {r["label"]: r for r in report.per_class}["hat"]["recall"] > 0.8
    assert np.asarray(report.confusion).sum() == report.n == 120


def test_artifact_round_trip_predicts_the_same(tmp_path):
    tx, ty = labelled({"a": 50, "b": 50}, seed=3)
    head, _ = train_head(tx, ty, tx[:0], [], kinds=("logreg",))
    path = tmp_path / "head.npz"
    head.save(path)
    loaded = StyleHead.load(path)
    assert loaded.classes == ["a", "b"] and loaded.kind == "logreg"
    assert np.allclose(loaded.predict_proba(tx), head.predict_proba(tx), atol=1e-6)
    assert np.allclose(head.predict_proba(tx).sum(axis=1), 1)
    assert (np.array(head.predict(tx)) == np.array(ty)).mean() > 0.95


def test_fingerprint_changes_with_any_input():
    x = np.ones((3, 4), dtype=np.float32)
    base = fingerprint(x, ["a", "b", "a"], "model-1")
    assert base == fingerprint(x.copy(), ["a", "b", "a"], "model-1")
    assert base != fingerprint(x, ["a", "b", "b"], "model-1")
    x2 = x.copy()
    x2[0, 0] = 2
    assert base != fingerprint(x2, ["a", "b", "a"], "model-1")
    assert base != fingerprint(x, ["a", "b", "a"], "model-2")


def test_one_label_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="two labels"):
        train_head(np.ones((4, 2)), ["a"] * 4, np.ones((0, 2)), [])


def test_confusion_svg_is_a_labelled_image():
    tx, ty = labelled({"dress": 20, "<hat>": 20}, seed=1)
    head, _ = train_head(tx, ty, tx, ty, kinds=("logreg",))
    svg = confusion_svg(evaluate(head, tx, ty))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "&lt;hat&gt;" in svg and "dress" in svg
