"""Writes and shared lookups for embeddings."""
from __future__ import annotations

import logging

from django.db import connection, transaction

from catalog.models import Collection

from .models import ActiveEmbeddingModel, Embedding, EmbeddingModel

log = logging.getLogger(__name__)


def embedding_model_ensure(name: str) -> EmbeddingModel:
    """The row for the registry's current version of ``name``, with its own HNSW index.

    Each model's vectors get a partial index over ``vector::halfvec(D)``: searches filter on
    ``model_id`` and order by the same cast expression, so Postgres uses that index.
    """
    from ml.embedders import get_spec

    spec = get_spec(name)
    model, created = EmbeddingModel.objects.get_or_create(
        name=spec.name, version=spec.version, defaults={"dimension": spec.dimension}
    )
    if created or not _index_exists(model.index_name):
        with connection.cursor() as cursor:
            if connection.in_atomic_block:
                # Deferred FK checks queued in this transaction would block CREATE INDEX.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {model.index_name} ON {Embedding._meta.db_table} "
                f"USING hnsw ((vector::halfvec({model.dimension})) halfvec_cosine_ops) "
                f"WHERE model_id = {int(model.pk)}"
            )
    return model


def _index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
        return cursor.fetchone() is not None


def active_model(collection: Collection) -> EmbeddingModel:
    """The model a collection's searches use; set up on first use from ``collection.embedding_model``."""
    active = ActiveEmbeddingModel.objects.select_related("model").filter(collection=collection).first()
    if active:
        return active.model
    model = embedding_model_ensure(collection.embedding_model)
    ActiveEmbeddingModel.objects.get_or_create(collection=collection, defaults={"model": model})
    return model


def active_model_switch(collection: Collection, model: EmbeddingModel) -> None:
    """Point the collection's searches at ``model`` in one transaction."""
    with transaction.atomic():
        ActiveEmbeddingModel.objects.update_or_create(collection=collection, defaults={"model": model})
        Collection.objects.filter(pk=collection.pk).update(embedding_model=model.name)


def embeddings_upsert(rows: list[Embedding]) -> None:
    """Insert or replace vectors on the (image, model) key, so re-running a job changes nothing."""
    Embedding.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["image", "model"], update_fields=["vector", "item"]
    )


def warm_up_models() -> None:
    """Load every active embedder and the background model once, so the first task is not slow."""
    from ml.background import get_session
    from ml.embedders import get_embedder

    from django.conf import settings

    try:
        names = set(Collection.objects.values_list("embedding_model", flat=True))
        for name in names:
            get_embedder(name)
        if Collection.objects.filter(remove_background=True).exists():
            get_session(settings.STYLESITE_BACKGROUND_MODEL)
    except Exception:  # a missing model is reported by the task that needs it, with its reason
        log.warning("worker warm-up could not load every model", exc_info=True)
