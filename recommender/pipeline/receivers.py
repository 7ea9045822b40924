"""Signal receivers of the pipeline, connected when the app is ready."""
from __future__ import annotations

from django.dispatch import receiver

from catalog.signals import image_added


@receiver(image_added, dispatch_uid="recommender-enqueue-image")
def enqueue_image(sender=None, image_id: int | None = None, **_kwargs) -> None:
    """``catalog.signals.image_added`` (sent after commit): queue the pipeline for the image."""
    from .tasks import image_enqueue

    image_enqueue(image_id)
