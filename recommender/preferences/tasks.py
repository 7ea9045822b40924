"""Celery tasks of the preference area, and the one way to ask for a refit.

Votes are coalesced without delayed (ETA) tasks: a vote marks the collection *dirty* and queues a
fit unless one is already queued or running; a fit that finds the collection dirtied again while
it ran queues the next one. So a burst of votes costs one or two fits, a lone vote is in the model
one fit later (seconds), and no countdown task sits reserved in a prefetch-1 worker.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from catalog.models import Collection
from stylesite.exceptions import NotReady

from .fitting import preference_model_fit

log = logging.getLogger(__name__)


def _queued_key(collection_id: int) -> str:
    return f"preferences:fit-queued:{collection_id}"


def _dirty_key(collection_id: int) -> str:
    return f"preferences:fit-dirty:{collection_id}"


def _queue_if_idle(collection_id: int) -> None:
    # The queued flag outlives a lost task by at most the task time limit; then any vote queues again.
    if cache.add(_queued_key(collection_id), 1, timeout=settings.CELERY_TASK_TIME_LIMIT):
        preference_model_fit_task.delay(collection_id)


def preference_refit_soon(collection_id: int) -> None:
    """After commit, make sure a fit of the collection's model will start after this change."""
    def request() -> None:
        try:
            cache.set(_dirty_key(collection_id), 1, timeout=settings.CELERY_TASK_TIME_LIMIT)
            _queue_if_idle(collection_id)
        except Exception:  # broker or cache down: the next vote or feed asks again
            log.warning("could not queue a preference refit for collection %s", collection_id, exc_info=True)

    transaction.on_commit(request)


@shared_task(acks_late=True)
def preference_model_fit_task(collection_id: int) -> int | None:
    """Refit a collection's preference model; returns the new version (None: collection gone or
    nothing embedded yet). Running it twice only makes one more version."""
    cache.delete(_dirty_key(collection_id))
    try:
        collection = Collection.objects.filter(pk=collection_id).first()
        if collection is None:
            return None
        return preference_model_fit(collection).version
    except NotReady:
        return None
    finally:
        cache.delete(_queued_key(collection_id))
        if cache.get(_dirty_key(collection_id)):
            _queue_if_idle(collection_id)
