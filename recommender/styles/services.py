"""Writes of the style area: jobs, clustering and map, classifier and curation, coherence ratings.

The numeric work lives in ``ml.clustering`` and ``ml.classifier``; this module reads vectors,
writes rows, and keeps every replacement inside one transaction.
"""
from __future__ import annotations

import logging
import random

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from catalog.models import Collection
from stylesite.exceptions import Conflict, InvalidInput, NotFound, NotReady

from ..models import (
    CoherenceRating,
    CoherenceSet,
    StyleCluster,
    StyleJob,
)
from .jobs import stale_jobs_fail, style_job_params
from .tasks import style_job_task

log = logging.getLogger(__name__)

MAP_METHODS = ("tsne", "pca")
K_LIMITS = (2, 60)
# Re-clustering keeps a curator's name when the new centroid is at least this close to the old one.
NAME_MATCH_SIMILARITY = 0.9
COHERENCE_SET_SIZES = (4, 5, 6)
# About one set in four is a control (images from different clusters), so ratings have a baseline.
CONTROL_SHARE = 0.25
# How often an unrated existing set is shown again instead of a new one, so sets gather several ratings.
REUSE_SHARE = 0.7


# --- jobs ------------------------------------------------------------------------------------

def style_job_start(*, collection: Collection, kind: str, params: dict | None = None) -> StyleJob:
    """Validate and record a job, then queue it after commit. One active job per collection and kind."""
    params = style_job_params(kind, params or {})
    with transaction.atomic():
        Collection.objects.select_for_update().filter(pk=collection.pk).first()
        stale_jobs_fail(collection)
        if StyleJob.objects.filter(collection=collection, kind=kind,
                                   status__in=[StyleJob.Status.QUEUED, StyleJob.Status.RUNNING]).exists():
            raise Conflict(f"a {kind} job for {collection.slug} is already queued or running")
        job = StyleJob.objects.create(collection=collection, kind=kind, params=params)
        transaction.on_commit(lambda: _enqueue(job))
    return job


def _enqueue(job: StyleJob) -> None:
    try:
        style_job_task.delay(job.pk)
    except Exception as exc:  # the broker is down: say so on the job instead of leaving it queued
        log.warning("could not queue style job %s", job.pk, exc_info=True)
        StyleJob.objects.filter(pk=job.pk, status=StyleJob.Status.QUEUED).update(
            status=StyleJob.Status.FAILED, error=f"could not queue the job: {exc}", finished=timezone.now())


def cluster_rename(cluster: StyleCluster, name: str) -> StyleCluster:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a cluster name needs 1 to 100 characters")
    StyleCluster.objects.filter(pk=cluster.pk).update(name=name, named_by_curator=True)
    cluster.name, cluster.named_by_curator = name, True
    return cluster


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
    if existing is not None and rng.random() < REUSE_SHARE:
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
