"""Reads for the jobs page and ``GET /api/jobs/``: queues, per-collection image states, throughput."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from catalog.models import Collection, ItemImage

# Throughput is measured over this window (images that reached a final state in it).
THROUGHPUT_WINDOW = timedelta(minutes=5)
FAILED_SHOWN = 50

_READY = ItemImage.Status.READY
_UNREFINED = Q(status=_READY, refined=False)


@dataclass
class QueueState:
    name: str
    purpose: str
    waiting: int | None  # tasks in the broker (None: the broker did not answer)
    running: int  # images a worker holds now


@dataclass
class CollectionJobs:
    collection: Collection
    pending: int
    processing: int
    refine_waiting: int
    refining: int
    failed: int
    ready: int
    done_recently: int
    per_minute: float
    eta_seconds: int | None
    failures: list[ItemImage] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.pending + self.processing + self.refine_waiting + self.refining


def _waiting(queue: str) -> int | None:
    import redis

    try:
        return int(redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1).llen(queue))
    except redis.RedisError:
        return None


def queue_states() -> list[QueueState]:
    running = ItemImage.objects.aggregate(
        processing=Count("pk", filter=Q(status=ItemImage.Status.PROCESSING)),
        refining=Count("pk", filter=_UNREFINED & ~Q(claimed_by="")),
    )
    return [
        QueueState(settings.CELERY_TASK_DEFAULT_QUEUE, "pass 1: embed the photo as it is",
                   _waiting(settings.CELERY_TASK_DEFAULT_QUEUE), running["processing"]),
        QueueState(settings.STYLESITE_REFINE_QUEUE, "pass 2: cut out and embed again",
                   _waiting(settings.STYLESITE_REFINE_QUEUE), running["refining"]),
    ]


def collection_jobs(now=None) -> list[CollectionJobs]:
    """Each collection's images by pipeline state, its recent throughput and an ETA for the rest."""
    now = now or timezone.now()
    since = now - THROUGHPUT_WINDOW
    refine_failed = _UNREFINED & Q(claimed_by="") & ~Q(error="")
    rows = Collection.objects.order_by("name").annotate(
        n_pending=Count("images", filter=Q(images__status=ItemImage.Status.PENDING)),
        n_processing=Count("images", filter=Q(images__status=ItemImage.Status.PROCESSING)),
        n_refine_waiting=Count("images", filter=Q(images__status=_READY, images__refined=False,
                                                  images__claimed_by="", images__error="")),
        n_refining=Count("images", filter=Q(images__status=_READY, images__refined=False)
                         & ~Q(images__claimed_by="")),
        n_failed=Count("images", filter=Q(images__status=ItemImage.Status.FAILED)
                       | Q(images__status=_READY, images__refined=False, images__claimed_by="")
                       & ~Q(images__error="")),
        n_ready=Count("images", filter=Q(images__status=_READY)),
        n_recent=Count("images", filter=Q(images__status__in=[_READY, ItemImage.Status.FAILED],
                                          images__status_changed__gte=since)),
    )
    result = []
    for row in rows:
        per_minute = row.n_recent / (THROUGHPUT_WINDOW.total_seconds() / 60)
        jobs = CollectionJobs(row, row.n_pending, row.n_processing, row.n_refine_waiting, row.n_refining,
                              row.n_failed, row.n_ready, row.n_recent, per_minute, None)
        if jobs.remaining and per_minute:
            jobs.eta_seconds = int(jobs.remaining / per_minute * 60)
        if jobs.failed:
            jobs.failures = list(
                ItemImage.objects.filter(Q(status=ItemImage.Status.FAILED) | refine_failed, collection=row)
                .select_related("item").order_by("-status_changed")[:FAILED_SHOWN])
        result.append(jobs)
    return result


def failed_image_ids(collection: Collection) -> list[int]:
    """Images of ``collection`` that failed either pass (the retry button sends them through again)."""
    refine_failed = _UNREFINED & Q(claimed_by="") & ~Q(error="")
    return list(ItemImage.objects.filter(Q(status=ItemImage.Status.FAILED) | refine_failed, collection=collection)
                .values_list("pk", flat=True))
