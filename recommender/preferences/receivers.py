"""Signal receivers of the preferences area, connected when the app is ready."""
from __future__ import annotations

from django.dispatch import receiver

from catalog.signals import catalogue_deleted

from ..pipeline import ingest_drained


@receiver(catalogue_deleted, dispatch_uid="recommender-preferences-refit-on-delete")
def refit_after_delete(sender=None, collection_id: int | None = None, **_kwargs) -> None:
    """Items or images were deleted (their votes and vectors with them): fit the collection's
    preference model again soon, so predictions stop leaning on votes that are gone."""
    from .tasks import preference_refit_soon

    if collection_id is not None:
        preference_refit_soon(collection_id)


@receiver(ingest_drained, dispatch_uid="recommender-preferences-fit-after-ingest")
def fit_after_ingest(sender=None, collection_id: int | None = None, **_kwargs) -> None:
    """A collection's images are all embedded: fit its preference model now, so the For-you page
    is ready before anyone asks (the first feed would otherwise wait for this fit)."""
    from .tasks import preference_refit_soon

    if collection_id is not None:
        preference_refit_soon(collection_id)
