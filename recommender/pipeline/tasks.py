"""Celery tasks of the pipeline: thin wrappers over ``services``, safe to run twice."""
from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from catalog.lifecycle import (
    image_claim,
    image_fail,
    image_release,
    images_claim_more,
    images_mark_recut,
    images_requeue_stuck,
)
from catalog.models import ItemImage

from . import services
from .steps import current_cutter

log = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError, BrokerError, RedisError)
# The sweep re-queues at most this many images per run; the next run takes the rest.
SWEEP_BATCH = 10_000
# Cut-outs of an older background model sent back to pass 2 per sweep (every 5 minutes): a few
# minutes of pass-2 work on two cores, so new uploads are never queued behind a whole catalogue.
RECUT_BATCH = 100


@shared_task(bind=True, max_retries=5, acks_late=True)
def process_image_task(self, image_id: int) -> str:
    """Process ``image_id`` and, in the same batch, up to ``STYLESITE_PIPELINE_BATCH`` - 1 other
    pending images (their own tasks then find them done and skip). Returns ``image_id``'s outcome.

    Claims carry this task's id, so a redelivery after the worker died resumes them at once.
    """
    token = self.request.id or ""
    claimed: list[ItemImage] = []
    try:
        own = image_claim(image_id, token)
        more = settings.STYLESITE_PIPELINE_BATCH - (1 if own else 0)
        claimed = ([own] if own else []) + images_claim_more(token, more, exclude=image_id)
        outcomes = services.images_process(claimed, cut_out=False)
    except TRANSIENT as exc:
        for image in claimed:
            image_release(image.pk)
        raise self.retry(exc=exc, countdown=min(300, 5 * 2 ** self.request.retries))
    except DatabaseError:
        raise
    except Exception as exc:
        # An unexpected error: fail the batch's images with a reason rather than loop on them.
        log.exception("images %s failed in the pipeline", [image.pk for image in claimed])
        unfinished = ItemImage.objects.filter(pk__in=[image.pk for image in claimed],
                                              status=ItemImage.Status.PROCESSING, claimed_by=token)
        failed = list(unfinished.values_list("pk", flat=True))  # images of earlier batches stay ready
        for unfinished_id in failed:
            image_fail(unfinished_id, f"internal error: {type(exc).__name__}: {exc}")
        return "failed" if image_id in failed else "ready" if own else "skipped"
    refine_enqueue([image.pk for image in claimed
                    if outcomes.get(image.pk) == "ready" and image.collection.remove_background])
    services.drained_collections_announce({image.collection_id for image in claimed})
    return outcomes.get(image_id, "skipped")


@shared_task(bind=True, max_retries=5, acks_late=True)
def refine_image_task(self, image_id: int) -> str:
    """Pass 2 (on ``STYLESITE_REFINE_QUEUE``): cut out, check the mask, re-embed, mark refined."""
    try:
        return services.image_refine(image_id, self.request.id or "")
    except TRANSIENT as exc:  # the retry keeps this task's id, so it resumes its own claim
        raise self.retry(exc=exc, countdown=min(300, 5 * 2 ** self.request.retries))


def refine_enqueue(image_ids: list[int]) -> None:
    """Queue pass 2 for images embedded uncut, one task per ``STYLESITE_REFINE_BATCH`` of them (each
    claims that many); the sweep re-queues any the broker lost."""
    for image_id in sorted(image_ids)[::max(1, settings.STYLESITE_REFINE_BATCH)]:
        try:
            refine_image_task.apply_async((image_id,), queue=settings.STYLESITE_REFINE_QUEUE)
        except Exception:
            log.warning("could not queue the refinement of image %s; the sweep will retry", image_id, exc_info=True)


def images_enqueue(image_ids: list[int]) -> None:
    """Queue the pipeline for new images: one task per ``STYLESITE_PIPELINE_BATCH`` of them (each
    task claims its own image and that many pending ones, so the tasks together cover them all; a
    task per image would mostly find its image taken). If the broker is down the images stay
    pending and the periodic sweep queues them later."""
    for image_id in sorted(image_ids)[::max(1, settings.STYLESITE_PIPELINE_BATCH)]:
        try:
            process_image_task.delay(image_id)
        except Exception:
            log.warning("could not queue image %s; the sweep will retry", image_id, exc_info=True)


def _queue_length(queue: str | None = None) -> int:
    import redis

    return int(redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(queue or settings.CELERY_TASK_DEFAULT_QUEUE))


@shared_task
def sweep_stuck_images_task() -> int:
    """Re-queue images stuck in pending/processing longer than the bound (e.g. a killed worker).

    Pending images may simply be waiting their turn in a long queue; then only the ones a worker
    took and never finished are reclaimed. When pass 2 has nothing queued, it gets the unrefined
    images, or else a batch of cut-outs another background model made (a model, size, precision or
    quantisation change), which are cut again so stored vectors and photo searches share one cutter.
    """
    ids = images_requeue_stuck(processing_only=_queue_length() > 0, limit=SWEEP_BATCH)
    for image_id in ids:
        process_image_task.delay(image_id)
    if not _queue_length(settings.STYLESITE_REFINE_QUEUE):
        unrefined = list(ItemImage.objects.filter(status=ItemImage.Status.READY, refined=False, error="")
                         .values_list("pk", flat=True)[:SWEEP_BATCH])
        refine_enqueue(unrefined or images_mark_recut(current_cutter(), RECUT_BATCH))
    return len(ids)
