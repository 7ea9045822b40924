"""Reads of the preference area: feeds, predictions with reasons, a user's votes, respondents.

The feed is scored in numpy over the vector matrix stored with the collection's fitted model
(``fitting.fitted_preferences``, loaded once per process through the bounded model cache), so a
request costs one query for the model row, one for the user's votes and the arithmetic. A user's
votes since the last fit enter through ``predict_live``: a new vote changes the next feed at once.

Before a user's first vote in a collection the feed is the popular items spread over labels
(the popularity baseline stored with every fit); from the first vote on it is the served
predictor's. Every answer says which predictor answered and how many of the user's votes it used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet

from catalog.models import Collection, Item
from catalog.selectors import collection_by_slug
from stylesite.exceptions import NotFound, NotReady
from stylesite.params import parse_int

from ..artifacts import artifact_load, artifact_path
from ..embeddings import CollectionMatrix, matrix_key
from ..models import PreferenceModel, Vote, VoterProfile
from .fitting import FittedPreferences, fitted_load, key_text
from .tasks import preference_refit_soon

MAX_FEED = 100


def predictor_in_use(collection: Collection) -> str:
    """The predictor the collection's feed answers with (its latest fit), for the For-you page."""
    return PreferenceModel.objects.filter(collection=collection).values_list("name", flat=True).first() or ""


def fitted_preferences(collection: Collection) -> FittedPreferences:
    """The collection's fitted preference model (never fitted here: a read).

    When new vectors or votes arrived since the last fit, a refit is queued and the last fit
    answers meanwhile. ``NotReady`` before the first fit of the collection.
    """
    model = PreferenceModel.objects.filter(collection=collection).first()
    if model is None or not artifact_path(model.artifact).is_file():
        preference_refit_soon(collection.pk)
        raise NotReady(f"Predictions for {collection.name} are being prepared; try again in a few seconds.")
    # Whether vectors changed since the fit costs a query over the collection's vectors: asked at
    # most once per STYLESITE_PREFERENCE_RECHECK_SECONDS per collection, across all processes.
    if cache.add(f"preferences:stale-check:{collection.pk}", 1,
                 timeout=max(1, int(settings.STYLESITE_PREFERENCE_RECHECK_SECONDS))) \
            and model.matrix_key != key_text(matrix_key(collection)):
        preference_refit_soon(collection.pk)
    # The row's fit time is part of the key: a refit (or a rebuilt database) never meets an old load.
    return artifact_load(("preferences", model.pk, model.version, model.fitted.isoformat()),
                         lambda: fitted_load(model))


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


@dataclass(frozen=True)
class Answer:
    """Predictions and who made them: the predictor's name and how many of the user's votes it used."""

    predictions: list[Prediction]
    predictor: str
    n_votes: int


COLD_START = "popularity"  # what answers a user with no vote in the collection yet


def _user_votes(user: AbstractBaseUser, matrix: CollectionMatrix) -> tuple[np.ndarray, np.ndarray]:
    """The user's votes on the matrix's items, oldest first (predictors may weight recent ones more)."""
    collection_id = matrix.key[0]
    rows = [r for r in Vote.objects.filter(user=user, item__collection_id=collection_id)
            .order_by("updated", "id").values_list("item_id", "value") if r[0] in matrix.row_of]
    return matrix.rows([r[0] for r in rows]), np.array([r[1] == Vote.Value.LIKE for r in rows], dtype=bool)


def _unrated(matrix: CollectionMatrix, items: np.ndarray) -> np.ndarray:
    unrated = np.ones(len(matrix.item_ids), dtype=bool)
    unrated[items] = False
    return np.flatnonzero(unrated)


def _answer(user: AbstractBaseUser, fitted: FittedPreferences, candidates: np.ndarray | None,
            k: int | None, mode: str = "feed") -> Answer:
    """Predictions for ``candidates`` (default: the unrated items).

    ``mode="feed"``: the ``k`` most likely liked (before any vote: the most popular, spread over
    labels). ``mode="next"``: the ``k`` the user should rate next (``_pick_next``). With ``k``
    None, every candidate in the order given.
    """
    from threadpoolctl import threadpool_limits

    from ml.preferences import cover_labels, decide, explain_with

    predictor, matrix = fitted.predictor, fitted.matrix
    items, liked = _user_votes(user, matrix)
    cold = len(items) == 0 and mode == "feed" and k is not None  # only the feed's order is popularity's
    answered_by = COLD_START if cold else predictor.name
    if candidates is None:
        candidates = _unrated(matrix, items)
    if len(candidates) == 0:
        return Answer([], answered_by, len(items))
    # One BLAS thread: these products are small, and on a busy machine waking a pool of threads
    # costs more than the arithmetic (measured: explanations 64 ms -> 1 ms under load).
    with threadpool_limits(1, user_api="blas"):
        if mode == "next" and k is not None:
            candidates = _pick_next(predictor, fitted.labels, items, liked, candidates, k)
        p, threshold = predictor.predict_live(user.pk, candidates, items, liked)
        if mode == "feed" and k is not None:
            if cold:
                popular = fitted.popularity.predict_proba(user.pk, candidates)
                order = np.argsort(-popular, kind="stable")
                top = cover_labels(order, fitted.labels[candidates[order]], k)
            else:
                top = np.argsort(-p, kind="stable")[:k]
            candidates, p = candidates[top], p[top]
        decisions = decide(p, len(items), threshold, *predictor.margins)
        reasons = explain_with(matrix.vectors, items, liked, candidates, top=3)
    return Answer(_as_predictions(matrix, candidates, p, decisions, reasons), answered_by, len(items))


def _pick_next(predictor, labels: np.ndarray, items: np.ndarray, liked: np.ndarray, candidates: np.ndarray,
               k: int) -> np.ndarray:
    """What to rate next: the predictor's own choice when it has one (``Personal.next_to_rate``:
    the largest expected reduction of its uncertainty, spread over labels), else the items whose
    P(like) is closest to its threshold, spread over labels."""
    from ml.preferences import cover_labels

    if hasattr(predictor, "next_to_rate"):
        return predictor.next_to_rate(items, liked, candidates, k)
    p, threshold = predictor.predict_live(0, candidates, items, liked)
    order = np.argsort(np.abs(p - threshold), kind="stable")
    return candidates[cover_labels(order, labels[candidates[order]], k)]


def _as_predictions(matrix: CollectionMatrix, candidates: np.ndarray, p: np.ndarray, decisions: np.ndarray,
                    reasons: list) -> list[Prediction]:
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


def feed_answer(user: AbstractBaseUser, collection: Collection, k: int = 20) -> Answer:
    """The user's unrated items of ``collection`` with vectors, most likely liked first (before
    any vote: popular ones spread over labels), and who answered."""
    fitted = fitted_preferences(collection)
    if len(fitted.matrix.item_ids) == 0:
        raise NotReady(f"No item of '{collection.slug}' has been embedded yet; try again shortly.")
    return _answer(user, fitted, None, k)


def feed(user: AbstractBaseUser, collection: Collection, k: int = 20) -> list[Prediction]:
    """:func:`feed_answer`'s predictions."""
    return feed_answer(user, collection, k).predictions


def next_to_rate(user: AbstractBaseUser, collection: Collection, k: int = 10) -> Answer:
    """The ``k`` unrated items whose votes would teach the user's model most, covering labels."""
    fitted = fitted_preferences(collection)
    if len(fitted.matrix.item_ids) == 0:
        raise NotReady(f"No item of '{collection.slug}' has been embedded yet; try again shortly.")
    return _answer(user, fitted, None, k, mode="next")


def predict_items(user: AbstractBaseUser, item_ids: list[int]) -> list[Prediction]:
    """Predictions for the given items (rated or not), in the order asked."""
    collection_of = dict(Item.objects.filter(pk__in=item_ids).values_list("pk", "collection_id"))
    missing = [i for i in item_ids if i not in collection_of]
    if missing:
        raise NotFound(f"No such item: {', '.join(map(str, missing[:20]))}.")
    by_id: dict[int, Prediction] = {}
    for collection_id in set(collection_of.values()):
        collection = Collection.objects.get(pk=collection_id)
        fitted = fitted_preferences(collection)
        matrix = fitted.matrix
        ids = [i for i in item_ids if collection_of[i] == collection_id]
        not_ready = [i for i in ids if i not in matrix.row_of]
        if not_ready:
            raise NotReady(f"Items not embedded yet: {', '.join(map(str, not_ready[:20]))}.")
        for prediction in _answer(user, fitted, matrix.rows(ids), None).predictions:
            by_id[prediction.item.pk] = prediction
    return [by_id[i] for i in item_ids if i in by_id]


def default_collection(user: AbstractBaseUser, slug: str | None) -> Collection:
    """The collection asked for; else the one the user voted most in; else the first."""
    if slug:
        return collection_by_slug(slug)
    voted = (Vote.objects.filter(user=user).values("item__collection").annotate(n=Count("id")).order_by("-n").first())
    collection = (Collection.objects.filter(pk=voted["item__collection"]).first() if voted
                  else Collection.objects.order_by("pk").first())
    if collection is None:
        raise NotReady("There is no collection yet.")
    return collection


def parse_k(raw: str | None, default: int = 20) -> int:
    return parse_int(raw, name="k", default=default, minimum=1, maximum=MAX_FEED)


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


def items_to_rate(user: AbstractBaseUser, k: int = 4) -> list[Item]:
    """``k`` visible items the user has not voted on, least voted first (the home's "rate these")."""
    return list(Item.objects.filter(pk__in=Item.objects.visible().values("pk")).exclude(votes__user=user)
                .annotate(n_votes=Count("votes")).with_cover().order_by("n_votes", "-id")[:k])
