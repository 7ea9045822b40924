"""Celery tasks: thin wrappers over the pipeline, safe to run twice."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from catalog.models import ItemImage

from . import pipeline

log = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError, BrokerError, RedisError)


@shared_task(bind=True, max_retries=5, acks_late=True)
def process_image_task(self, image_id: int) -> str:
    try:
        return pipeline.image_process(image_id)
    except TRANSIENT as exc:
        pipeline.release(image_id)
        raise self.retry(exc=exc, countdown=min(300, 5 * 2 ** self.request.retries))
    except DatabaseError:
        raise
    except Exception as exc:
        # An unexpected error: fail the image with a reason rather than loop on it.
        log.exception("image %s failed in the pipeline", image_id)
        pipeline.fail(image_id, f"internal error: {type(exc).__name__}: {exc}")
        return "failed"


def enqueue_image(sender=None, image_id: int | None = None, **_kwargs) -> None:
    """Receiver of ``catalog.signals.image_added`` (sent after commit): queue the pipeline.

    If the broker is down the image stays pending and the periodic sweep queues it later.
    """
    try:
        process_image_task.delay(image_id)
    except Exception:
        log.warning("could not queue image %s; the sweep will retry", image_id, exc_info=True)


def _queue_length() -> int:
    import redis
    from django.conf import settings

    return int(redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(settings.CELERY_TASK_DEFAULT_QUEUE))


@shared_task
def sweep_stuck_images_task() -> int:
    """Re-queue images stuck in pending/processing longer than the bound (e.g. a killed worker)."""
    stuck = pipeline.stuck_images()
    if _queue_length() > 0:
        # Pending images may simply be waiting their turn in a long queue; only reclaim the
        # ones a worker took and never finished.
        stuck = stuck.filter(status=ItemImage.Status.PROCESSING)
    ids = list(stuck.values_list("pk", flat=True)[:10_000])
    ItemImage.objects.filter(pk__in=ids).update(status=ItemImage.Status.PENDING, status_changed=timezone.now())
    for image_id in ids:
        process_image_task.delay(image_id)
    return len(ids)
