"""Reads of the style area shared by pages, the API, the admin and commands."""
from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Greatest

from catalog.models import Collection, Item

from ..artifacts import artifact_path
from ..models import (
    CoherenceRating,
    ItemStyle,
    Mislabel,
    StyleClassifier,
    StyleCluster,
    StyleClustering,
    StyleJob,
    StylePrediction,
    Vote,
)


def clusters_of(collection: Collection) -> QuerySet[StyleCluster]:
    return StyleCluster.objects.filter(collection=collection).order_by("index")


def clustering_of(collection: Collection) -> StyleClustering | None:
    return StyleClustering.objects.filter(collection=collection).select_related("model").first()


def cluster_items(cluster: StyleCluster) -> QuerySet[Item]:
    return Item.objects.filter(style__cluster=cluster).with_cover().order_by("id")


def latest_jobs(collection: Collection) -> dict[str, StyleJob | None]:
    return {kind: StyleJob.objects.filter(collection=collection, kind=kind).first() for kind in StyleJob.Kind.values}


def map_points(collection: Collection, user: AbstractBaseUser | None = None) -> list[dict]:
    """Every mapped item with its place, cluster, label, thumbnail and (for a user) their vote."""
    votes: dict[int, str] = {}
    if user is not None and user.is_authenticated:
        votes = dict(Vote.objects.filter(user=user, item__collection=collection).values_list("item_id", "value"))
    rows = (ItemStyle.objects.filter(cluster__collection=collection)
            .select_related("cluster", "item").prefetch_related("item__images").order_by("item_id"))
    points = []
    for row in rows:
        cover = row.item.cover
        points.append({
            "id": row.item_id, "x": round(row.x, 5), "y": round(row.y, 5), "cluster": row.cluster.index,
            "label": row.item.label, "title": row.item.title,
            "thumb": cover.thumbnail.url if cover and cover.thumbnail else "",
            "url": row.item.get_absolute_url(), "vote": votes.get(row.item_id, ""),
        })
    return points


@dataclass(frozen=True)
class ExportRow:
    item_id: int
    source_name: str
    label: str
    cluster_index: int
    cluster_name: str
    x: float
    y: float


EXPORT_HEADER = ["item_id", "source_name", "label", "cluster_index", "cluster_name", "map_x", "map_y"]


def export_rows(collection: Collection) -> Iterator[ExportRow]:
    rows = (ItemStyle.objects.filter(cluster__collection=collection).order_by("item_id")
            .values_list("item_id", "item__source_name", "item__label", "cluster__index", "cluster__name", "x", "y"))
    for row in rows.iterator(chunk_size=2000):
        yield ExportRow(*row)


def classifier_of(collection: Collection) -> StyleClassifier | None:
    return StyleClassifier.objects.filter(collection=collection).select_related("model").first()


def item_style_guess(item: Item) -> StylePrediction | None:
    """The classifier's label for an item (the "looks like: dress 87%" line), if it has run."""
    return StylePrediction.objects.filter(item=item).first()


def predicted_top_items(collection: Collection, label: str, limit: int = 12) -> QuerySet[Item]:
    """Items the classifier is most sure are ``label``, most sure first."""
    return (Item.objects.filter(collection=collection, style_prediction__label=label).with_cover()
            .order_by("-style_prediction__probability", "id")[:limit])


def mislabels(collection: Collection | None = None, min_confidence: float | None = None) -> QuerySet[Mislabel]:
    """Items whose label the classifier or the neighbours' majority contradicts with high confidence.

    Ordered by that confidence (the larger of the disagreeing ones), most confident first.
    """
    threshold = settings.STYLESITE_MISLABEL_CONFIDENCE if min_confidence is None else min_confidence
    rows = Mislabel.objects.select_related("item", "classifier").exclude(item__label="")
    if collection is not None:
        rows = rows.filter(item__collection=collection)
    by_classifier = Q(probability__gte=threshold) & ~Q(label=F("item__label"))
    by_neighbours = Q(neighbour_share__gte=threshold) & ~Q(neighbour_label=F("item__label")) & ~Q(neighbour_label="")
    # The confidence of the disagreeing opinion (an agreeing classifier's 100% must not rank first).
    confidence = Greatest(Case(When(by_classifier, then=F("probability")), default=Value(0.0)),
                          Case(When(by_neighbours, then=F("neighbour_share")), default=Value(0.0)))
    return (rows.filter(by_classifier | by_neighbours).annotate(confidence=confidence)
            .order_by("-confidence", "item_id"))


@dataclass
class CoherenceSummary:
    ratings: int
    mean: float | None
    by_group: dict[str, dict[str, float | int | None]]


def _summary(scores: list[tuple[int, str]]) -> CoherenceSummary:
    groups: dict[str, list[int]] = defaultdict(list)
    for score, group in scores:
        groups[group or "(no group)"].append(score)
    return CoherenceSummary(
        ratings=len(scores), mean=round(statistics.fmean(s for s, _ in scores), 3) if scores else None,
        by_group={g: {"ratings": len(v), "mean": round(statistics.fmean(v), 3)} for g, v in sorted(groups.items())},
    )


def coherence_of(cluster: StyleCluster) -> CoherenceSummary:
    return _summary(list(CoherenceRating.objects.filter(set__cluster=cluster).values_list("score", "group")))


def coherence_control(collection: Collection) -> CoherenceSummary:
    return _summary(list(CoherenceRating.objects.filter(set__collection=collection, set__is_control=True)
                         .values_list("score", "group")))


def coherence_table(collection: Collection) -> list[tuple[StyleCluster | None, CoherenceSummary]]:
    """Per-cluster summaries followed by the control row (cluster None)."""
    rows: list[tuple[StyleCluster | None, CoherenceSummary]] = [(c, coherence_of(c)) for c in clusters_of(collection)]
    rows.append((None, coherence_control(collection)))
    return rows


def style_guess_for_vector(collection: Collection, vector: np.ndarray) -> tuple[str, float] | None:
    """The latest classifier's label and probability for a query vector of the collection's active
    model (e.g. a searched photo); None when there is no classifier for that model yet.
    """
    from ..embeddings import active_model
    from .curation import head_load

    classifier = classifier_of(collection)
    vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    if classifier is None or classifier.model_id != active_model(collection).pk \
            or vector.shape[1] != classifier.model.dimension or not artifact_path(classifier.artifact).is_file():
        return None
    proba = head_load(classifier).predict_proba(vector)[0]
    best = int(proba.argmax())
    return classifier.classes[best], float(proba[best])
