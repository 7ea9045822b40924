"""Signal receivers of the embeddings area, connected when the app is ready."""
from __future__ import annotations

from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate, dispatch_uid="recommender-embeddings-ensure")
def embeddings_ensure_after_migrate(sender, app_config=None, **_kwargs) -> None:
    """After ``migrate``: every collection's active model row and HNSW index (the ensure step)."""
    if app_config is None or app_config.label != "recommender":
        return
    from .services import embeddings_ensure_all

    embeddings_ensure_all()
