"""Celery tasks of the preference area."""
from __future__ import annotations

from celery import shared_task

from catalog.models import Collection
from stylesite.exceptions import NotReady

from .fitting import preference_model_fit


@shared_task(acks_late=True)
def preference_model_fit_task(collection_id: int) -> int | None:
    """Refit a collection's preference model; returns the new version (None: collection gone or
    nothing embedded yet). Running it twice only makes one more version."""
    collection = Collection.objects.filter(pk=collection_id).first()
    if collection is None:
        return None
    try:
        return preference_model_fit(collection).version
    except NotReady:
        return None
