"""Votes are batched: a vote asks for a refit *soon*, and one Celery task per collection per
``STYLESITE_PREFERENCE_REFIT_SECONDS`` fits the model again."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from .tasks import preference_model_fit_task

log = logging.getLogger(__name__)


def preference_refit_soon(collection_id: int) -> None:
    """Queue one refit of the collection's model after the debounce window (after commit).

    The flag in the shared cache makes every vote of the next few seconds share one refit.
    """
    def enqueue() -> None:
        delay = settings.STYLESITE_PREFERENCE_REFIT_SECONDS
        try:
            if cache.add(f"preferences:refit:{collection_id}", 1, timeout=delay):
                preference_model_fit_task.apply_async((collection_id,), countdown=delay)
        except Exception:  # broker or cache down: the next vote or feed asks again
            log.warning("could not queue a preference refit for collection %s", collection_id, exc_info=True)

    transaction.on_commit(enqueue)
