"""The served preference model: fitted in Celery (``tasks``) on a collection's votes and stored as
a versioned artifact that web processes load (``selectors.fitted_preferences``) and never fit.

Between refits a user's newest votes still count, through ``predict_live``: the fitted part is
what the other users' votes taught the model (and its calibration, refitted at every refit).
The fit first stores the image descriptors still missing (``descriptors_fill``), then builds
each item's side information (metadata one-hot, descriptors) for the predictors that use it.
"""
from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog.models import Collection, Item, ItemImage
from ml.preferences import PREDICTORS, make_predictor
from stylesite.exceptions import NotReady

from ..artifacts import artifact_path, artifact_write
from ..embeddings import CollectionMatrix, collection_matrix
from ..models import ItemDescriptor, PreferenceModel, ServedPredictor, Vote

log = logging.getLogger(__name__)

# Served until an evaluation picks on validation votes: robust (shrunk toward the population),
# personal from the first vote, and it answers "what to rate next".
DEFAULT_PREDICTOR = "personal"
# Bump when the pickled layout below changes: older artifacts are then refitted, never misread.
ARTIFACT_FORMAT = 3  # 3: personal has the descriptors kernel (likeness) column


@dataclass
class FittedPreferences:
    """A fitted predictor, the popularity baseline for cold starts, and the matrix their rows refer to."""

    predictor: Any
    popularity: Any
    matrix: CollectionMatrix
    model: PreferenceModel

    @property
    def labels(self) -> np.ndarray:
        """Each matrix row's label index (-1: none)."""
        return self.popularity.side.labels


def descriptors_fill(collection: Collection, limit: int | None = None) -> int:
    """Compute and store ``ml.descriptors`` for the collection's items that lack current ones.

    Read from the item's first ready image: its cut-out (the garment alone), else thumbnail,
    else original. An image whose file cannot be read is skipped (tried again at the next fit).
    Returns how many were stored. Safe to run twice: an upsert on the item.
    """
    from PIL import Image, UnidentifiedImageError

    from ml.descriptors import DESCRIPTOR_VERSION, image_descriptors

    current = ItemDescriptor.objects.filter(item__collection=collection, version=DESCRIPTOR_VERSION)
    images = (ItemImage.objects.filter(collection=collection, status=ItemImage.Status.READY)
              .exclude(item_id__in=current.values("item_id")).order_by("item_id", "position", "id"))
    rows, seen = [], set()
    for image in images.iterator():
        if image.item_id in seen:
            continue
        seen.add(image.item_id)
        for field in (image.cutout, image.thumbnail, image.original):
            if not field:
                continue
            try:
                with field.open("rb") as handle, Image.open(handle) as img:
                    img.draft("RGB", (256, 256))
                    values = image_descriptors(img)
            except (OSError, ValueError, UnidentifiedImageError):
                continue
            rows.append(ItemDescriptor(item_id=image.item_id, version=DESCRIPTOR_VERSION, values=values.tolist()))
            break
        if limit is not None and len(rows) >= limit:
            break
    ItemDescriptor.objects.bulk_create(rows, batch_size=500, update_conflicts=True, unique_fields=["item"],
                                       update_fields=["version", "values", "computed"])
    return len(rows)


def item_side(item_ids: np.ndarray):
    """``ml.preferences.ItemSide`` of these items, in this order (a matrix's rows): label, category,
    gender and period one-hot, price quartile, and stored descriptors (NaN where none yet)."""
    from ml.descriptors import DESCRIPTOR_NAMES, DESCRIPTOR_VERSION
    from ml.preferences import ItemSide

    ids = [int(i) for i in item_ids]
    meta = {pk: row for pk, *row in Item.objects.filter(pk__in=ids).values_list(
        "pk", "label", "category", "gender", "period", "price")}
    stored = dict(ItemDescriptor.objects.filter(item_id__in=ids, version=DESCRIPTOR_VERSION)
                  .values_list("item_id", "values"))
    empty = ("", "", "", "", None)
    rows = [meta.get(pk, empty) for pk in ids]
    descriptors = np.full((len(ids), len(DESCRIPTOR_NAMES)), np.nan)
    for r, pk in enumerate(ids):
        if pk in stored and len(stored[pk]) == len(DESCRIPTOR_NAMES):
            descriptors[r] = stored[pk]
    columns = {name: [row[k] or "" for row in rows] for k, name in enumerate(("label", "category", "gender", "period"))}
    return ItemSide.build(columns, descriptors, prices=[row[4] for row in rows])


def served_name(collection: Collection) -> str:
    served = ServedPredictor.objects.filter(collection=collection).values_list("name", flat=True).first()
    return served if served in PREDICTORS else DEFAULT_PREDICTOR


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
    """Fit the collection's served predictor on all its votes and store it as the next version.

    Too few votes to learn from (under two users or one class) serve ``label_prior``: smoothed
    like-rates need no fitting data, and say so on the For-you page.
    """
    started = time.monotonic()
    try:
        descriptors_fill(collection)
    except Exception:  # descriptors improve the model but must never block a refit
        log.warning("descriptors for %s could not be computed", collection.slug, exc_info=True)
    matrix = collection_matrix(collection)
    votes, _ = vote_data(collection, matrix)
    side = item_side(matrix.item_ids)
    name = served_name(collection)
    if len(np.unique(votes.user_ids)) < 2 or len(np.unique(votes.liked)) < 2:
        name = "label_prior"
    predictor = make_predictor(name, side).fit(matrix.vectors, votes)
    popularity = predictor if name == "popularity" else make_predictor("popularity", side).fit(matrix.vectors, votes)
    previous = PreferenceModel.objects.filter(collection=collection).first()
    version = previous.version + 1 if previous else 1
    relative = f"preferences/{collection.slug}/v{version}.pkl"

    def write(path: Path) -> None:
        with path.open("wb") as handle:
            np.save(handle, matrix.vectors, allow_pickle=False)
            _Pickler(handle, matrix.vectors).dump({"format": ARTIFACT_FORMAT, "predictor": predictor,
                                                   "popularity": popularity, "key": matrix.key,
                                                   "item_ids": matrix.item_ids})

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
    return FittedPreferences(data["predictor"], data["popularity"], matrix, model)
