"""Signal receivers of the pipeline, connected when the app is ready."""
from __future__ import annotations

from django.dispatch import receiver

from catalog.signals import image_added


@receiver(image_added, dispatch_uid="recommender-enqueue-image")
def enqueue_images(sender=None, image_ids: list[int] | None = None, **_kwargs) -> None:
    """``catalog.signals.image_added`` (sent after commit): queue the pipeline for the images."""
    from .tasks import images_enqueue

    images_enqueue(image_ids or [])
