"""Writes of the style area: jobs, clustering and map, classifier and curation, coherence ratings.

The numeric work lives in ``ml.clustering`` and ``ml.classifier``; this module reads vectors,
writes rows, and keeps every replacement inside one transaction.
"""
from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from catalog.models import Collection, Item, ItemImage
from stylesite.exceptions import Conflict, InvalidInput, NotFound, NotReady

from .models import (
    CoherenceRating, CoherenceSet, Embedding, EmbeddingModel, ItemStyle, NearDuplicate, StyleClassifier,
    StyleCluster, StyleClustering, StyleJob, StylePrediction, Vote,
)
from .services import active_model

log = logging.getLogger(__name__)

MAP_METHODS = ("tsne", "pca")
K_LIMITS = (2, 60)
# Re-clustering keeps a curator's name when the new centroid is at least this close to the old one.
NAME_MATCH_SIMILARITY = 0.9
COHERENCE_SET_SIZES = (4, 5, 6)
# About one set in four is a control (images from different clusters), so ratings have a baseline.
CONTROL_SHARE = 0.25


# --- vectors ---------------------------------------------------------------------------------

@dataclass
class CollectionVectors:
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
    vectors = np.array([_as_array(r[3]) for r in rows], dtype=np.float32).reshape(len(rows), model.dimension)
    return CollectionVectors(model, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], vectors)


def _as_array(value) -> np.ndarray:
    """A stored halfvec as numpy (pgvector returns a list or a ``HalfVector`` depending on the path)."""
    return value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value, dtype=np.float32)


# --- jobs ------------------------------------------------------------------------------------

def style_job_start(*, collection: Collection, kind: str, params: dict | None = None) -> StyleJob:
    """Validate and record a job, then queue it after commit. One active job per collection and kind."""
    params = style_job_params(kind, params or {})
    with transaction.atomic():
        Collection.objects.select_for_update().filter(pk=collection.pk).first()
        _fail_stale_jobs(collection)
        if StyleJob.objects.filter(collection=collection, kind=kind,
                                   status__in=[StyleJob.Status.QUEUED, StyleJob.Status.RUNNING]).exists():
            raise Conflict(f"a {kind} job for {collection.slug} is already queued or running")
        job = StyleJob.objects.create(collection=collection, kind=kind, params=params)
        transaction.on_commit(lambda: _enqueue(job))
    return job


def _fail_stale_jobs(collection: Collection) -> None:
    """Close jobs that can no longer finish, so they do not block new ones: "running" past the
    worker's hard time limit (the worker died), or "queued" for longer than the broker keeps a task."""
    now = timezone.now()
    running_limit = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    queued_limit = now - timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    StyleJob.objects.filter(collection=collection).filter(
        Q(status=StyleJob.Status.RUNNING, started__lt=running_limit)
        | Q(status=StyleJob.Status.QUEUED, created__lt=queued_limit)
    ).update(status=StyleJob.Status.FAILED, error="the job was lost (worker or broker stopped)", finished=now)


def style_job_params(kind: str, params: dict) -> dict:
    if kind not in StyleJob.Kind.values:
        raise InvalidInput(f"unknown job kind {kind!r}; use one of {', '.join(StyleJob.Kind.values)}")
    if kind == StyleJob.Kind.CLASSIFY:
        return {}
    method = params.get("map_method", "tsne")
    if method not in MAP_METHODS:
        raise InvalidInput(f"unknown map method {method!r}; use one of {', '.join(MAP_METHODS)}")
    try:
        k_min, k_max = int(params.get("k_min", 2)), int(params.get("k_max", 30))
    except (TypeError, ValueError):
        raise InvalidInput("k_min and k_max must be whole numbers") from None
    if not K_LIMITS[0] <= k_min <= k_max <= K_LIMITS[1]:
        raise InvalidInput(f"need {K_LIMITS[0]} <= k_min <= k_max <= {K_LIMITS[1]}")
    return {"map_method": method, "k_min": k_min, "k_max": k_max}


def _enqueue(job: StyleJob) -> None:
    from .style_tasks import style_job_task

    try:
        style_job_task.delay(job.pk)
    except Exception as exc:  # the broker is down: say so on the job instead of leaving it queued
        log.warning("could not queue style job %s", job.pk, exc_info=True)
        StyleJob.objects.filter(pk=job.pk, status=StyleJob.Status.QUEUED).update(
            status=StyleJob.Status.FAILED, error=f"could not queue the job: {exc}", finished=timezone.now())


def style_job_run(job_id: int) -> str:
    """Claim a queued job and run it; returns its final status ("skipped" when someone else has it)."""
    claimed = StyleJob.objects.filter(pk=job_id, status=StyleJob.Status.QUEUED).update(
        status=StyleJob.Status.RUNNING, started=timezone.now(), progress=0.0)
    if not claimed:
        return "skipped"
    job = StyleJob.objects.select_related("collection").get(pk=job_id)
    progress = _progress_writer(job.pk)
    try:
        if job.kind == StyleJob.Kind.CLUSTER:
            result = clustering_run(job.collection, progress=progress, **job.params)
        else:
            result = classifier_run(job.collection, progress=progress)
    except (NotReady, InvalidInput, ValueError) as exc:
        StyleJob.objects.filter(pk=job_id).update(status=StyleJob.Status.FAILED, error=str(exc),
                                                  finished=timezone.now())
        return StyleJob.Status.FAILED
    except Exception as exc:
        log.exception("style job %s failed", job_id)
        StyleJob.objects.filter(pk=job_id).update(status=StyleJob.Status.FAILED, finished=timezone.now(),
                                                  error=f"internal error: {type(exc).__name__}: {exc}")
        return StyleJob.Status.FAILED
    StyleJob.objects.filter(pk=job_id).update(status=StyleJob.Status.DONE, progress=1.0, message="done",
                                              result=result, finished=timezone.now())
    return StyleJob.Status.DONE


def _progress_writer(job_id: int) -> Callable[[float, str], None]:
    last = {"at": 0.0}

    def write(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last["at"] >= 0.5 or fraction >= 1:  # the page polls every second or two
            last["at"] = now
            StyleJob.objects.filter(pk=job_id).update(progress=round(min(max(fraction, 0.0), 1.0), 3),
                                                      message=message[:300])
    return write


def _stage(progress: Callable[[float, str], None], start: float, end: float) -> Callable[[float, str], None]:
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


# --- clustering and map ------------------------------------------------------------------------

def clustering_run(collection: Collection, *, map_method: str = "tsne", k_min: int = 2, k_max: int = 30,
                   progress: Callable[[float, str], None] = lambda f, m: None) -> dict:
    """Cluster the active embeddings, draw the map, and replace the previous result atomically."""
    from ml.clustering import cluster_embeddings, default_name, match_clusters, project_2d

    started, cpu_started = time.monotonic(), time.process_time()
    data = collection_vectors(collection)
    if len(data.item_ids) < 3:
        raise NotReady(f"{collection.slug} has {len(data.item_ids)} embedded item(s); clustering needs 3 or more")
    result = cluster_embeddings(data.vectors, k_min=k_min, k_max=k_max, progress=_stage(progress, 0.0, 0.6))
    progress(0.6, f"drawing the {map_method} map")
    map_started, map_cpu_started = time.monotonic(), time.process_time()
    coords = project_2d(data.vectors, method=map_method)
    map_seconds, map_cpu = time.monotonic() - map_started, time.process_time() - map_cpu_started
    progress(0.95, "saving")

    old = list(StyleCluster.objects.filter(collection=collection, named_by_curator=True))
    old_centroids = np.array([_as_array(c.centroid) for c in old], dtype=np.float32)
    matched = match_clusters(old_centroids, result.centroids, NAME_MATCH_SIMILARITY) if old else {}
    with transaction.atomic():
        new_clusters = []
        for index in range(result.k):
            members = [data.labels[i] for i in np.flatnonzero(result.labels == index)]
            carried = old[matched[index]] if index in matched else None
            new_clusters.append(StyleCluster(
                collection=collection, model=data.model, k=result.k, index=index,
                name=carried.name if carried else default_name(members, index),
                named_by_curator=carried is not None, size=len(members),
                label_mix=dict(Counter(label or "(none)" for label in members).most_common()),
                centroid=result.centroids[index].tolist(),
            ))
        # Coherence sets of a matched cluster follow it; the rest lose their cluster (kept as history).
        old_sets = {old[o].pk: n for n, o in matched.items()}
        set_owner = dict(CoherenceSet.objects.filter(cluster__collection=collection).values_list("pk", "cluster_id"))
        StyleCluster.objects.filter(collection=collection).delete()
        created = StyleCluster.objects.bulk_create(new_clusters)
        for set_pk, old_cluster_pk in set_owner.items():
            if old_cluster_pk in old_sets:
                CoherenceSet.objects.filter(pk=set_pk).update(cluster=created[old_sets[old_cluster_pk]])
        ItemStyle.objects.bulk_create([
            ItemStyle(item_id=item_id, cluster=created[int(label)], x=float(x), y=float(y))
            for item_id, label, (x, y) in zip(data.item_ids, result.labels, coords)
        ], batch_size=2000)
        seconds = time.monotonic() - started
        StyleClustering.objects.update_or_create(collection=collection, defaults={
            "model": data.model, "k": result.k, "silhouette": result.silhouette,
            "silhouette_by_k": {str(k): v for k, v in result.silhouette_by_k.items()},
            "inertia_by_k": {str(k): v for k, v in result.inertia_by_k.items()},
            "map_method": map_method, "items": len(data.item_ids), "seconds": seconds,
        })
    return {"k": result.k, "silhouette": round(result.silhouette, 4), "items": len(data.item_ids),
            "map_method": map_method, "map_seconds": round(map_seconds, 2), "seconds": round(seconds, 2),
            "map_cpu_seconds": round(map_cpu, 2), "cpu_seconds": round(time.process_time() - cpu_started, 2),
            "kept_names": len(matched)}


def cluster_rename(cluster: StyleCluster, name: str) -> StyleCluster:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a cluster name needs 1 to 100 characters")
    StyleCluster.objects.filter(pk=cluster.pk).update(name=name, named_by_curator=True)
    cluster.name, cluster.named_by_curator = name, True
    return cluster


# --- classifier and curation --------------------------------------------------------------------

_HEADS: dict[str, object] = {}


def head_load(classifier: StyleClassifier):
    """The trained head of ``classifier`` (loaded once per process)."""
    from ml.classifier import StyleHead

    path = Path(settings.STYLESITE_MODEL_CACHE) / classifier.artifact
    key = str(path)
    if key not in _HEADS:
        _HEADS[key] = StyleHead.load(path)
    return _HEADS[key]


def classifier_run(collection: Collection, progress: Callable[[float, str], None] = lambda f, m: None) -> dict:
    """Train the head when labels or embeddings changed, then refresh predictions and curation lists."""
    from ml.classifier import evaluate, fingerprint, train_head

    data = collection_vectors(collection)
    parts = {split: [i for i, s in enumerate(data.splits) if s == split and data.labels[i]]
             for split in (Item.Split.TRAIN, Item.Split.VALIDATION, Item.Split.TEST)}
    train, val, test = parts[Item.Split.TRAIN], parts[Item.Split.VALIDATION], parts[Item.Split.TEST]
    if len({data.labels[i] for i in train}) < 2:
        raise NotReady(f"{collection.slug} needs embedded items of at least two labels in the train split")

    def subset(idx: list[int]) -> tuple[np.ndarray, list[str]]:
        return data.vectors[idx].reshape(len(idx), data.vectors.shape[1]), [data.labels[i] for i in idx]

    (tx, ty), (vx, vy), (sx, sy) = subset(train), subset(val), subset(test)
    fp = fingerprint(tx, ty, vx, vy, f"{data.model.name}/{data.model.version}")
    latest = StyleClassifier.objects.filter(collection=collection).first()
    retrained = not (latest and latest.fingerprint == fp and latest.model_id == data.model.pk
                     and (Path(settings.STYLESITE_MODEL_CACHE) / latest.artifact).is_file())
    if retrained:
        head, candidates = train_head(tx, ty, vx, vy, progress=_stage(progress, 0.0, 0.7))
        version = (latest.version + 1) if latest else 1
        artifact = f"style-heads/{collection.slug}/v{version}-{fp[:12]}.npz"
        head.meta.update({"fingerprint": fp, "model": f"{data.model.name}/{data.model.version}"})
        head.save(Path(settings.STYLESITE_MODEL_CACHE) / artifact)
        classifier = StyleClassifier.objects.create(
            collection=collection, model=data.model, version=version, kind=head.kind, fingerprint=fp,
            artifact=artifact, classes=head.classes, candidates=candidates,
            validation=evaluate(head, vx, vy).as_dict(), test=evaluate(head, sx, sy).as_dict(),
        )
    else:
        classifier = latest
        head = head_load(classifier)
    progress(0.75, "predicting every item")
    curation = _curation_refresh(collection, classifier, head, data)
    progress(1.0, "done")
    return {"version": classifier.version, "retrained": retrained, "kind": classifier.kind,
            "test_accuracy": round(classifier.test.get("accuracy", 0.0), 4),
            "test_macro_f1": round(classifier.test.get("macro_f1", 0.0), 4),
            "validation_accuracy": round(classifier.validation.get("accuracy", 0.0), 4), **curation}


def _curation_refresh(collection: Collection, classifier: StyleClassifier, head, data: CollectionVectors) -> dict:
    from ml.clustering import near_duplicate_pairs, neighbour_majority

    proba = head.predict_proba(data.vectors)
    best = proba.argmax(axis=1)
    names, shares = neighbour_majority(data.vectors, data.labels, k=settings.STYLESITE_CURATION_NEIGHBOURS)
    pairs = near_duplicate_pairs(data.vectors, threshold=settings.STYLESITE_DUPLICATE_SIMILARITY)
    with transaction.atomic():
        StylePrediction.objects.filter(item__collection=collection).delete()
        StylePrediction.objects.bulk_create([
            StylePrediction(item_id=item_id, classifier=classifier, label=head.classes[int(b)],
                            probability=float(proba[i, b]), neighbour_label=names[i],
                            neighbour_share=float(shares[i]))
            for i, (item_id, b) in enumerate(zip(data.item_ids, best))
        ], batch_size=2000)
        # Pairs keep a curator's earlier decision; only new pairs are added.
        NearDuplicate.objects.bulk_create([
            NearDuplicate(collection=collection, first_id=min(data.item_ids[a], data.item_ids[b]),
                          second_id=max(data.item_ids[a], data.item_ids[b]), similarity=sim)
            for a, b, sim in pairs
        ], ignore_conflicts=True, batch_size=2000)
    return {"predictions": len(data.item_ids), "duplicate_pairs": len(pairs)}


def item_relabel(item: Item, label: str) -> Item:
    """A curator's relabel from the curation list; the next classifier job sees the new label."""
    label = label.strip()
    if not label or len(label) > 100:
        raise InvalidInput("a label needs 1 to 100 characters")
    Item.objects.filter(pk=item.pk).update(label=label, updated=timezone.now())
    item.label = label
    return item


def duplicate_resolve(pair: NearDuplicate, action: str) -> NearDuplicate:
    """``keep``: both items stay, the pair is closed. ``merge``: the second item's images and votes
    move to the first and the second item is deleted."""
    pair = NearDuplicate.objects.select_related("first", "second").filter(pk=pair.pk).first()
    if pair is None:  # merging another pair deleted one of its items
        raise NotFound("this pair no longer exists: one of its items was merged away")
    if pair.resolution != NearDuplicate.Resolution.OPEN:
        raise Conflict(f"pair {pair.pk} was already resolved ({pair.get_resolution_display()})")
    if action == "keep":
        NearDuplicate.objects.filter(pk=pair.pk).update(resolution=NearDuplicate.Resolution.KEPT)
        pair.resolution = NearDuplicate.Resolution.KEPT
        return pair
    if action != "merge":
        raise InvalidInput(f"unknown action {action!r}; use keep or merge")
    keep, drop = pair.first, pair.second
    with transaction.atomic():
        offset = keep.images.count()
        for image in drop.images.order_by("position", "id"):
            ItemImage.objects.filter(pk=image.pk).update(item=keep, position=offset + image.position)
        Embedding.objects.filter(item=drop).update(item=keep)
        voted = Vote.objects.filter(item=keep).values_list("user_id", flat=True)
        Vote.objects.filter(item=drop).exclude(user_id__in=voted).update(item=keep)
        # Deleting the item removes this pair (and any other pair of it) by cascade.
        drop.delete()
    pair.resolution = NearDuplicate.Resolution.MERGED
    return pair


# --- coherence ratings ---------------------------------------------------------------------------

def coherence_set_next(collection: Collection, user: AbstractBaseUser, rng: random.Random | None = None
                       ) -> CoherenceSet:
    """A set for ``user`` to rate: from one cluster, or (about a quarter of the time) a control.

    Existing sets the user has not rated are reused first, so several people rate the same sets.
    """
    rng = rng or random.Random()
    clusters = list(StyleCluster.objects.filter(collection=collection, size__gte=min(COHERENCE_SET_SIZES)))
    if not clusters:
        raise NotReady(f"{collection.slug} has no clusters of {min(COHERENCE_SET_SIZES)} or more items yet")
    control = len(clusters) >= min(COHERENCE_SET_SIZES) and rng.random() < CONTROL_SHARE
    cluster = None if control else rng.choice(clusters)
    existing = (CoherenceSet.objects.filter(collection=collection, is_control=control, cluster=cluster)
                .exclude(ratings__user=user).annotate(n=Count("ratings")).order_by("n", "id").first())
    if existing is not None and rng.random() < 0.7:
        return existing
    size = rng.choice(COHERENCE_SET_SIZES)
    if control:
        picked = rng.sample(clusters, min(size, len(clusters)))
        item_ids = [rng.choice(list(c.members.values_list("item_id", flat=True))) for c in picked]
    else:
        members = list(cluster.members.values_list("item_id", flat=True))
        item_ids = rng.sample(members, min(size, len(members)))
    with transaction.atomic():
        new_set = CoherenceSet.objects.create(collection=collection, cluster=cluster, is_control=control)
        new_set.items.set(item_ids)
    return new_set


def coherence_rate(*, user: AbstractBaseUser, set_id: int, score: object) -> CoherenceRating:
    """Store one rating per user and set; a second rating of the same set is refused."""
    text = str(score).strip()
    if isinstance(score, bool) or text not in {"1", "2", "3", "4", "5"}:
        raise InvalidInput("score must be a whole number from 1 to 5")
    value = int(text)
    coherence_set = CoherenceSet.objects.filter(pk=set_id).first()
    if coherence_set is None:
        raise NotFound(f"no coherence set {set_id}")
    group = user.groups.order_by("name").values_list("name", flat=True).first() or ""
    try:
        with transaction.atomic():
            return CoherenceRating.objects.create(set=coherence_set, user=user, score=value, group=group)
    except IntegrityError:
        raise Conflict("you already rated this set") from None
