"""Reads of the preference area: the collection's vector matrix, the served predictor, feeds.

The feed is scored in numpy over every item vector of the collection's active model, held in a
per-process cache keyed by (collection, model, vector count, newest vector id), so a request
costs one small key query, one query for the user's votes and the arithmetic, never a query
per item. The served predictor is fitted once per process on the collection's stored votes
(again keyed, so a new evaluation or new vectors refit it); a user's votes since then enter
through ``predict_live``: a new vote changes the next feed without any refit.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, Max, Q, QuerySet

from catalog.models import Collection, Item, ItemImage
from stylesite.exceptions import InvalidInput, NotFound, NotReady

from .models import Embedding, ServedPredictor, Vote, VoterProfile
from .services import active_model

PREDICTORS = ("item_cf", "user_cf", "hybrid")
DEFAULT_PREDICTOR = "item_cf"  # the reference method, until an evaluation picks the best
MAX_FEED = 100


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
_predictors: dict[int, tuple[tuple, Any]] = {}
_stand_ins: dict[int, tuple[tuple, Any]] = {}  # item_cf answering while the served predictor fits
_fitting: set[tuple] = set()
_last_used: dict[int, str] = {}


def predictor_in_use(collection: Collection) -> str:
    """The predictor that answered this collection's last feed in this process (item_cf while
    the served one is still fitting)."""
    return _last_used.get(collection.pk, served_name(collection))


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
    embeddings = Embedding.objects.filter(model=model, item__collection=collection)
    stats = embeddings.aggregate(n=Count("id"), last=Max("id"))
    key = (collection.pk, model.pk, stats["n"], stats["last"] or 0)
    if cached is not None and cached.key == key:
        cached.checked = time.monotonic()
        return cached
    by_item: dict[int, list[np.ndarray]] = {}
    for item_id, vector in _read_vectors(model.pk, collection.pk):
        by_item.setdefault(item_id, []).append(vector)
    item_ids = np.array(sorted(by_item), dtype=np.int64)
    if len(item_ids):
        vectors = np.stack([np.mean(by_item[int(i)], axis=0) for i in item_ids])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    else:
        vectors = np.zeros((0, model.dimension), dtype=np.float32)
    matrix = CollectionMatrix(key, item_ids, vectors, {int(i): r for r, i in enumerate(item_ids)}, time.monotonic())
    with _lock:
        _matrices[collection.pk] = matrix
    return matrix


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


def vote_data(collection: Collection, matrix: CollectionMatrix, splits: tuple[str, ...] | None = None,
              users: QuerySet | None = None):
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


def make_predictor(name: str, seed: int = 0):
    from ml.preferences import Hybrid, ItemCF, UserCF

    return {"item_cf": ItemCF, "user_cf": UserCF, "hybrid": lambda: Hybrid(seed=seed)}[name]()


def served_name(collection: Collection) -> str:
    served = ServedPredictor.objects.filter(collection=collection).values_list("name", flat=True).first()
    return served or DEFAULT_PREDICTOR


def served_predictor(collection: Collection, matrix: CollectionMatrix, wait: bool = False):
    """The collection's served predictor fitted on all its stored votes, cached per process.

    A learned predictor takes seconds to fit (tens of seconds for 10,000 items on a busy
    machine): too long for one request, and longer than a web worker's timeout. Unless ``wait``,
    it is fitted in a background thread while item_cf (well under a second to fit) answers;
    requests after the fit get it. Only the fit runs in the thread: the votes are read here.
    """
    served = ServedPredictor.objects.filter(collection=collection).first()
    name = served.name if served else DEFAULT_PREDICTOR
    key = (matrix.key, name, served.updated if served else None)
    cached = _predictors.get(collection.pk)
    if cached is not None and cached[0] == key:
        return cached[1]
    votes, _ = vote_data(collection, matrix)
    if len(np.unique(votes.user_ids)) < 2 or len(np.unique(votes.liked)) < 2:
        name = DEFAULT_PREDICTOR  # a learned model needs several users and both classes
    if name == DEFAULT_PREDICTOR or wait:
        return _fit_and_cache(collection.pk, key, name, matrix.vectors, votes)
    with _lock:
        start = key not in _fitting
        _fitting.add(key)
    if start:
        threading.Thread(target=_fit_and_cache, args=(collection.pk, key, name, matrix.vectors, votes),
                         name=f"fit-{name}-{collection.pk}", daemon=True).start()
    stand_in = _stand_ins.get(collection.pk)
    if stand_in is None or stand_in[0] != key:
        stand_in = (key, make_predictor(DEFAULT_PREDICTOR).fit(matrix.vectors, votes))
        with _lock:
            _stand_ins[collection.pk] = stand_in
    return stand_in[1]


def _fit_and_cache(collection_id: int, key: tuple, name: str, vectors: np.ndarray, votes):
    try:
        predictor = make_predictor(name).fit(vectors, votes)
        with _lock:
            _predictors[collection_id] = (key, predictor)
        return predictor
    finally:
        with _lock:
            _fitting.discard(key)


@dataclass(frozen=True)
class Reason:
    item: Item
    value: str
    similarity: float


@dataclass(frozen=True)
class Prediction:
    item: Item
    p_like: float
    decision: str
    because: list[Reason]

    @property
    def liked_reasons(self) -> list[Reason]:
        return [r for r in self.because if r.value == Vote.Value.LIKE]

    @property
    def disliked_reasons(self) -> list[Reason]:
        return [r for r in self.because if r.value == Vote.Value.DISLIKE]


def _user_votes(user: AbstractBaseUser, matrix: CollectionMatrix) -> tuple[np.ndarray, np.ndarray]:
    collection_id = matrix.key[0]
    rows = [r for r in Vote.objects.filter(user=user, item__collection_id=collection_id).values_list("item_id", "value")
            if r[0] in matrix.row_of]
    return matrix.rows([r[0] for r in rows]), np.array([r[1] == Vote.Value.LIKE for r in rows], dtype=bool)


def _predictions(user: AbstractBaseUser, collection: Collection, matrix: CollectionMatrix,
                 candidates: np.ndarray | None, k: int | None) -> list[Prediction]:
    from threadpoolctl import threadpool_limits

    from ml.preferences import decide, explain_with

    predictor = served_predictor(collection, matrix)
    _last_used[collection.pk] = predictor.name
    items, liked = _user_votes(user, matrix)
    if candidates is None:
        unrated = np.ones(len(matrix.item_ids), dtype=bool)
        unrated[items] = False
        candidates = np.flatnonzero(unrated)
    if len(candidates) == 0:
        return []
    # One BLAS thread: these products are small, and on a busy machine waking a pool of threads
    # costs more than the arithmetic (measured: explanations 64 ms -> 1 ms under load).
    with threadpool_limits(1, user_api="blas"):
        p, threshold = predictor.predict_live(user.pk, candidates, items, liked)
        if k is not None:
            top = np.argsort(-p, kind="stable")[:k]
            candidates, p = candidates[top], p[top]
        decisions = decide(p, len(items), threshold)
        reasons = explain_with(matrix.vectors, items, liked, candidates, top=3)
    wanted = set(matrix.item_ids[candidates].tolist()) | {matrix.item_ids[i] for r in reasons for i, _, _ in r}
    objects = Item.objects.with_cover().in_bulk([int(i) for i in wanted])
    out = []
    for row, prob, decision, why in zip(candidates, p, decisions, reasons):
        item = objects.get(int(matrix.item_ids[row]))
        if item is None:  # deleted since the matrix was cached
            continue
        because = [Reason(objects[int(matrix.item_ids[i])], Vote.Value.LIKE if was_liked else Vote.Value.DISLIKE, sim)
                   for i, was_liked, sim in why if int(matrix.item_ids[i]) in objects]
        out.append(Prediction(item, float(prob), str(decision), because))
    return out


def feed(user: AbstractBaseUser, collection: Collection, k: int = 20) -> list[Prediction]:
    """The user's unrated items of ``collection`` with vectors, most likely liked first."""
    matrix = collection_matrix(collection)
    if len(matrix.item_ids) == 0:
        raise NotReady(f"No item of '{collection.slug}' has been embedded yet; try again shortly.")
    return _predictions(user, collection, matrix, None, k)


def predict_items(user: AbstractBaseUser, item_ids: list[int]) -> list[Prediction]:
    """Predictions for the given items (rated or not), in the order asked."""
    items = Item.objects.in_bulk(item_ids)
    missing = [i for i in item_ids if i not in items]
    if missing:
        raise NotFound(f"No such item: {', '.join(map(str, missing[:20]))}.")
    by_id: dict[int, Prediction] = {}
    for collection_id in {items[i].collection_id for i in item_ids}:
        collection = Collection.objects.get(pk=collection_id)
        matrix = collection_matrix(collection)
        ids = [i for i in item_ids if items[i].collection_id == collection_id]
        not_ready = [i for i in ids if i not in matrix.row_of]
        if not_ready:
            raise NotReady(f"Items not embedded yet: {', '.join(map(str, not_ready[:20]))}.")
        for prediction in _predictions(user, collection, matrix, matrix.rows(ids), None):
            by_id[prediction.item.pk] = prediction
    return [by_id[i] for i in item_ids if i in by_id]


def default_collection(user: AbstractBaseUser, slug: str | None) -> Collection:
    """The collection asked for; else the one the user voted most in; else the first."""
    if slug:
        collection = Collection.objects.filter(slug=slug).first()
        if collection is None:
            raise NotFound(f"No collection '{slug}'.")
        return collection
    voted = (Vote.objects.filter(user=user).values("item__collection").annotate(n=Count("id")).order_by("-n").first())
    collection = (Collection.objects.filter(pk=voted["item__collection"]).first() if voted
                  else Collection.objects.order_by("pk").first())
    if collection is None:
        raise NotReady("There is no collection yet.")
    return collection


def parse_k(raw: str | None, default: int = 20) -> int:
    try:
        k = int(raw) if raw not in (None, "") else default
    except ValueError:
        raise InvalidInput("k must be a whole number.") from None
    if not 1 <= k <= MAX_FEED:
        raise InvalidInput(f"k must be between 1 and {MAX_FEED}.")
    return k


def user_vote_map(user: AbstractBaseUser, item_ids: list[int]) -> dict[int, str]:
    """``{item_id: value}`` of the user's votes on these items (for drawing the vote buttons)."""
    return dict(Vote.objects.filter(user=user, item_id__in=item_ids).values_list("item_id", "value"))


def my_votes(user: AbstractBaseUser, value: str | None = None) -> QuerySet[Vote]:
    votes = Vote.objects.filter(user=user).select_related("item", "item__collection").order_by("-updated", "-id")
    return votes.filter(value=value) if value else votes


@dataclass(frozen=True)
class RespondentRow:
    username: str
    kind: str
    n_votes: int
    train_likes: list[str]
    train_dislikes: list[str]
    validation_likes: list[str]
    validation_dislikes: list[str]


def respondent_table(collection: Collection | None = None, limit: int = 100) -> list[RespondentRow]:
    """The ``limit`` users with most votes, each with their votes' image names by split and value."""
    votes = Vote.objects.all()
    if collection is not None:
        votes = votes.filter(item__collection=collection)
    top = list(votes.values("user_id").annotate(n=Count("id")).order_by("-n", "user_id")[:limit])
    user_ids = [r["user_id"] for r in top]
    kinds = dict(VoterProfile.objects.filter(user_id__in=user_ids).values_list("user_id", "kind"))
    lists: dict[int, dict[tuple[str, str], list[str]]] = {u: {} for u in user_ids}
    rows = votes.filter(user_id__in=user_ids).filter(Q(split=Vote.Split.TRAIN) | Q(split=Vote.Split.VALIDATION))
    for user_id, split, value, source_name, title in rows.order_by("item__source_name").values_list(
            "user_id", "split", "value", "item__source_name", "item__title"):
        lists[user_id].setdefault((split, value), []).append(source_name or title)
    from django.contrib.auth import get_user_model

    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    out = []
    for r in top:
        got = lists[r["user_id"]]
        out.append(RespondentRow(
            names[r["user_id"]], kinds.get(r["user_id"], "visitor"), r["n"],
            got.get(("train", "like"), []), got.get(("train", "dislike"), []),
            got.get(("validation", "like"), []), got.get(("validation", "dislike"), []),
        ))
    return out
