"""The served preference model: fitted in Celery (``tasks``) on a collection's votes and stored as
a versioned artifact that web processes load (``selectors.fitted_preferences``) and never fit.

Between refits a user's newest votes still count, through ``predict_live``: the fitted part is
what the other users' votes taught the model.
"""
from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog.models import Collection
from stylesite.exceptions import NotReady

from ..artifacts import artifact_path, artifact_write
from ..embeddings import CollectionMatrix, collection_matrix
from ..models import PreferenceModel, ServedPredictor, Vote

PREDICTORS = ("item_cf", "user_cf", "hybrid")
DEFAULT_PREDICTOR = "item_cf"  # the reference method, until an evaluation picks the best
# Bump when the pickled layout below changes: older artifacts are then refitted, never misread.
ARTIFACT_FORMAT = 1


@dataclass
class FittedPreferences:
    """A fitted predictor and the vector matrix its item rows refer to."""

    predictor: Any
    matrix: CollectionMatrix
    model: PreferenceModel


def make_predictor(name: str, seed: int = 0):
    from ml.preferences import Hybrid, ItemCF, UserCF

    return {"item_cf": ItemCF, "user_cf": UserCF, "hybrid": lambda: Hybrid(seed=seed)}[name]()


def served_name(collection: Collection) -> str:
    served = ServedPredictor.objects.filter(collection=collection).values_list("name", flat=True).first()
    return served or DEFAULT_PREDICTOR


def vote_data(collection: Collection, matrix: CollectionMatrix, splits: tuple[str, ...] | None = None,
              users=None):
    """The collection's votes on items with vectors, as ``ml.preferences.VoteData`` plus splits."""
    from ml.preferences import VoteData

    votes = Vote.objects.filter(item__collection=collection)
    if splits is not None:
        votes = votes.filter(split__in=splits)
    if users is not None:
        votes = votes.filter(user__in=users)
    rows = [r for r in votes.order_by("user_id", "id").values_list("user_id", "item_id", "value", "split")
            if r[1] in matrix.row_of]  # votes on items not embedded yet wait until they are
    data = VoteData(np.array([r[0] for r in rows], dtype=np.int64), matrix.rows([r[1] for r in rows]),
                    np.array([r[2] == Vote.Value.LIKE for r in rows], dtype=bool))
    return data, np.array([r[3] for r in rows], dtype=object)


class _Pickler(pickle.Pickler):
    """Stores the item vectors once (float32) however many copies the predictor keeps of them."""

    def __init__(self, file, vectors: np.ndarray):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._vectors = vectors
        self._as64 = vectors.astype(np.float64)

    def persistent_id(self, obj: Any) -> str | None:
        if isinstance(obj, np.ndarray) and obj.shape == self._vectors.shape:
            if obj.dtype == np.float32 and np.array_equal(obj, self._vectors):
                return "vectors32"
            if obj.dtype == np.float64 and np.array_equal(obj, self._as64):
                return "vectors64"
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, vectors: np.ndarray):
        super().__init__(file)
        self._arrays = {"vectors32": vectors, "vectors64": vectors.astype(np.float64)}

    def persistent_load(self, pid: str) -> np.ndarray:
        return self._arrays[pid]


def preference_model_fit(collection: Collection) -> PreferenceModel:
    """Fit the collection's served predictor on all its votes and store it as the next version."""
    started = time.monotonic()
    matrix = collection_matrix(collection)
    votes, _ = vote_data(collection, matrix)
    name = served_name(collection)
    if len(np.unique(votes.user_ids)) < 2 or len(np.unique(votes.liked)) < 2:
        name = DEFAULT_PREDICTOR  # a learned model needs several users and both classes
    predictor = make_predictor(name).fit(matrix.vectors, votes)
    previous = PreferenceModel.objects.filter(collection=collection).first()
    version = previous.version + 1 if previous else 1
    relative = f"preferences/{collection.slug}/v{version}.pkl"

    def write(path: Path) -> None:
        with path.open("wb") as handle:
            np.save(handle, matrix.vectors, allow_pickle=False)
            _Pickler(handle, matrix.vectors).dump({"format": ARTIFACT_FORMAT, "predictor": predictor,
                                                   "key": matrix.key, "item_ids": matrix.item_ids})

    artifact_write(relative, write)
    model, _ = PreferenceModel.objects.update_or_create(collection=collection, defaults={
        "name": name, "version": version, "matrix_key": key_text(matrix.key), "votes": len(votes.liked),
        "artifact": relative, "fit_seconds": round(time.monotonic() - started, 3)})
    if previous and previous.artifact != relative:
        # Web processes that still hold the old version keep it in memory until evicted.
        artifact_path(previous.artifact).unlink(missing_ok=True)
    return model


def key_text(key: tuple[int, ...]) -> str:
    return ",".join(str(int(k)) for k in key)


def fitted_load(model: PreferenceModel) -> FittedPreferences:
    from ml.preferences import ItemCF  # noqa: F401  (the pickled classes' module, imported before loading)

    path = artifact_path(model.artifact)
    with path.open("rb") as handle:
        vectors = np.load(handle, allow_pickle=False)
        data = _Unpickler(handle, vectors).load()
    if data.get("format") != ARTIFACT_FORMAT:
        raise NotReady("the preference model is being refitted; try again in a few seconds")
    item_ids = data["item_ids"]
    matrix = CollectionMatrix(tuple(data["key"]), item_ids, vectors, {int(i): r for r, i in enumerate(item_ids)})
    return FittedPreferences(data["predictor"], matrix, model)
