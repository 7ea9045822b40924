"""Reads of the embeddings area: the active model and a collection's vectors as numpy matrices.

Pure reads: nothing here creates a row or an index. A collection whose model is not set up
yet (its first image has not been processed) raises ``NotReady`` with a reason.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Count, Max

from catalog.models import Collection, Item, ItemImage
from ml.vectors import l2_normalise
from stylesite.exceptions import NotReady

from ..models import ActiveEmbeddingModel, Embedding, EmbeddingModel


def active_model_or_none(collection: Collection) -> EmbeddingModel | None:
    """The model a collection's searches use, or None before its first image is processed."""
    active = ActiveEmbeddingModel.objects.select_related("model").filter(collection=collection).first()
    return active.model if active else None


def active_model(collection: Collection) -> EmbeddingModel:
    """The model a collection's searches use; ``NotReady`` when none is set up yet."""
    model = active_model_or_none(collection)
    if model is None:
        raise NotReady(f"{collection.name} has no embedding model set up yet: its images are still waiting "
                       "for the pipeline")
    return model


def as_array(value) -> np.ndarray:
    """A stored halfvec as numpy (pgvector returns a list or a ``HalfVector`` depending on the path)."""
    return value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value, dtype=np.float32)


@dataclass
class CollectionVectors:
    """One vector per item (its first ready image) with the item's label and split."""

    model: EmbeddingModel
    item_ids: list[int]
    labels: list[str]
    splits: list[str]
    vectors: np.ndarray


def collection_vectors(collection: Collection) -> CollectionVectors:
    """One vector per item (its first ready image) under the collection's active model."""
    model = active_model(collection)
    rows = list(
        Embedding.objects.filter(model=model, item__collection=collection, image__status=ItemImage.Status.READY)
        .order_by("item_id", "image__position", "image_id").distinct("item_id")
        .values_list("item_id", "item__label", "item__split", "vector")
    )
    vectors = np.array([as_array(r[3]) for r in rows], dtype=np.float32).reshape(len(rows), model.dimension)
    return CollectionVectors(model, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], vectors)


@dataclass
class CollectionMatrix:
    """One unit vector per item (the mean of its images' vectors), rows in ``item_ids`` order."""

    key: tuple[int, int, int, int]
    item_ids: np.ndarray
    vectors: np.ndarray
    row_of: dict[int, int] = field(repr=False)
    checked: float = 0.0  # time.monotonic() of the last check against the database

    def rows(self, item_ids: list[int] | np.ndarray) -> np.ndarray:
        return np.array([self.row_of[int(i)] for i in item_ids], dtype=np.int64)


_lock = threading.Lock()
_matrices: dict[int, CollectionMatrix] = {}


def collection_matrix(collection: Collection) -> CollectionMatrix:
    """The collection's item vectors under its active model, cached per process.

    The cache is checked against the database (active model, vector count, newest vector id)
    at most every ``STYLESITE_PREFERENCE_RECHECK_SECONDS``: that check is the one query whose
    cost grows with the collection, and new vectors may well wait a few seconds.
    """
    cached = _matrices.get(collection.pk)
    if cached is not None and time.monotonic() - cached.checked < settings.STYLESITE_PREFERENCE_RECHECK_SECONDS:
        return cached
    model = active_model(collection)
    key = matrix_key(collection, model)
    if cached is not None and cached.key == key:
        cached.checked = time.monotonic()
        return cached
    by_item: dict[int, list[np.ndarray]] = {}
    for item_id, vector in _read_vectors(model.pk, collection.pk):
        by_item.setdefault(item_id, []).append(vector)
    item_ids = np.array(sorted(by_item), dtype=np.int64)
    if len(item_ids):
        vectors = l2_normalise(np.stack([np.mean(by_item[int(i)], axis=0) for i in item_ids]))
    else:
        vectors = np.zeros((0, model.dimension), dtype=np.float32)
    matrix = CollectionMatrix(key, item_ids, vectors, {int(i): r for r, i in enumerate(item_ids)}, time.monotonic())
    with _lock:
        _matrices[collection.pk] = matrix
    return matrix


def matrix_key(collection: Collection, model: EmbeddingModel | None = None) -> tuple[int, int, int, int]:
    """(collection, active model, vector count, newest vector id): changes whenever the matrix would."""
    model = model or active_model(collection)
    stats = Embedding.objects.filter(model=model, item__collection=collection).aggregate(n=Count("id"), last=Max("id"))
    return collection.pk, model.pk, stats["n"], stats["last"] or 0


def _read_vectors(model_id: int, collection_id: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(item_id, vector)`` of a collection's embeddings, cover image first, read by a binary COPY.

    halfvec's binary form is two uint16 (dimension, unused) then big-endian float16s, so numpy
    reads each vector straight from the bytes: 10,000 × 1,280 take well under a second this way,
    against several seconds through the text form and a Python list per vector.
    """
    embedding, item, image = Embedding._meta.db_table, Item._meta.db_table, ItemImage._meta.db_table
    sql = (f"COPY (SELECT e.item_id, e.vector FROM {embedding} e JOIN {item} i ON i.id = e.item_id "
           f"JOIN {image} m ON m.id = e.image_id WHERE e.model_id = {int(model_id)} "
           f"AND i.collection_id = {int(collection_id)} ORDER BY e.item_id, m.position, e.image_id) "
           "TO STDOUT (FORMAT BINARY)")
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.set_types(["int8", "bytea"])
        for item_id, raw in copy.rows():
            yield item_id, np.frombuffer(raw, dtype=">f2", offset=4).astype(np.float32)
