"""Style jobs: validation of their parameters, stale-job cleanup, and running a claimed job.

``tasks.style_job_task`` calls ``style_job_run``; ``services.style_job_start`` records and queues jobs.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from catalog.models import Collection
from stylesite.exceptions import InvalidInput, NotReady
from stylesite.params import parse_int

from ..models import StyleJob
from .clustering import MAP_METHODS, clustering_run
from .curation import classifier_run
from .similarity import similarity_run

log = logging.getLogger(__name__)

K_LIMITS = (2, 60)


def style_job_params(kind: str, params: dict) -> dict:
    if kind not in StyleJob.Kind.values:
        raise InvalidInput(f"unknown job kind {kind!r}; use one of {', '.join(StyleJob.Kind.values)}")
    if kind == StyleJob.Kind.CLASSIFY:
        return {}
    if kind == StyleJob.Kind.SIMILARITY:
        activate = params.get("activate", False)
        if not isinstance(activate, bool):
            raise InvalidInput("activate must be true or false")
        return {"activate": activate}
    method = params.get("map_method", "tsne")
    if method not in MAP_METHODS:
        raise InvalidInput(f"unknown map method {method!r}; use one of {', '.join(MAP_METHODS)}")
    try:
        k_min = parse_int(params.get("k_min"), name="k_min", default=2)
        k_max = parse_int(params.get("k_max"), name="k_max", default=30)
    except InvalidInput:
        raise InvalidInput("k_min and k_max must be whole numbers") from None
    if not K_LIMITS[0] <= k_min <= k_max <= K_LIMITS[1]:
        raise InvalidInput(f"need {K_LIMITS[0]} <= k_min <= k_max <= {K_LIMITS[1]}")
    return {"map_method": method, "k_min": k_min, "k_max": k_max}


def stale_jobs_fail(collection: Collection) -> None:
    """Close jobs that can no longer finish, so they do not block new ones: "running" past the
    worker's hard time limit (the worker died), or "queued" for longer than the broker keeps a task."""
    now = timezone.now()
    running_limit = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    queued_limit = now - timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    StyleJob.objects.filter(collection=collection).filter(
        Q(status=StyleJob.Status.RUNNING, started__lt=running_limit)
        | Q(status=StyleJob.Status.QUEUED, created__lt=queued_limit)
    ).update(status=StyleJob.Status.FAILED, error="the job was lost (worker or broker stopped)", finished=now)


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
        elif job.kind == StyleJob.Kind.SIMILARITY:
            result = similarity_run(job.collection, progress=progress, **job.params)
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
