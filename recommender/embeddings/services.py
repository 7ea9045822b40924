"""Writes of the embeddings area: model rows, their HNSW indexes, the active model, vectors.

This module is the one *ensure step*: it alone creates ``EmbeddingModel`` rows and HNSW indexes
(after ``migrate``, when a collection is created or processed, at activation and in ``reembed``).
Reads (``selectors.active_model``) never create anything.
"""
from __future__ import annotations

import logging

from django.db import connection, transaction

from catalog.models import Collection

from ..models import ActiveEmbeddingModel, Embedding, EmbeddingModel
from .signals import active_model_switched

log = logging.getLogger(__name__)


def embedding_model_ensure(name: str) -> EmbeddingModel:
    """The row for the registry's current version of ``name``, with its own HNSW index.

    Each model's vectors get a partial index over ``vector::halfvec(D)``: searches filter on
    ``model_id`` and order by the same cast expression, so Postgres uses that index.
    Raises ``ml.embedders.UnknownModel`` / ``WeightsMissing`` when the model cannot be built here.
    """
    from ml.embedders import get_spec

    spec = get_spec(name)
    model, _created = EmbeddingModel.objects.get_or_create(
        name=spec.name, version=spec.version, defaults={"dimension": spec.dimension}
    )
    hnsw_index_ensure(model)
    return model


def hnsw_index_ensure(model: EmbeddingModel) -> None:
    """Create the model's partial HNSW index unless it exists (the only CREATE INDEX outside migrations)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [model.index_name])
        if cursor.fetchone() is not None:
            return
        if connection.in_atomic_block:
            # Deferred FK checks queued in this transaction would block CREATE INDEX.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {model.index_name} ON {Embedding._meta.db_table} "
            f"USING hnsw ((vector::halfvec({model.dimension})) halfvec_cosine_ops) "
            f"WHERE model_id = {int(model.pk)}"
        )


def collection_embedding_ensure(collection: Collection) -> EmbeddingModel:
    """The collection's active model, set up from ``collection.embedding_model`` when it has none yet."""
    active = ActiveEmbeddingModel.objects.select_related("model").filter(collection=collection).first()
    if active:
        hnsw_index_ensure(active.model)
        return active.model
    model = embedding_model_ensure(collection.embedding_model)
    ActiveEmbeddingModel.objects.get_or_create(collection=collection, defaults={"model": model})
    return model


def embeddings_ensure_all() -> None:
    """Every collection's active model and index (run after ``migrate``); a model this machine
    cannot build is logged and left for the pipeline to report on the images that need it."""
    from ml.embedders import UnknownModel, WeightsMissing

    for collection in Collection.objects.order_by("pk"):
        try:
            collection_embedding_ensure(collection)
        except (UnknownModel, WeightsMissing) as exc:
            log.warning("collection %s: embedding model not set up: %s", collection.slug, exc)


def active_model_switch(collection: Collection, model: EmbeddingModel) -> None:
    """Point the collection's searches at ``model`` in one transaction; when that changes the model,
    announce it after commit (``active_model_switched``) so what was built in the old space is rebuilt."""
    with transaction.atomic():
        hnsw_index_ensure(model)
        previous = (ActiveEmbeddingModel.objects.select_for_update().filter(collection=collection)
                    .values_list("model_id", flat=True).first())
        ActiveEmbeddingModel.objects.update_or_create(collection=collection, defaults={"model": model})
        Collection.objects.filter(pk=collection.pk).update(embedding_model=model.name)
        if previous != model.pk:
            transaction.on_commit(lambda: active_model_switched.send(
                sender=ActiveEmbeddingModel, collection_id=collection.pk, model_id=model.pk,
                previous_model_id=previous))


def embeddings_upsert(rows: list[Embedding]) -> None:
    """Insert or replace vectors on the (image, model) key, so re-running a job changes nothing."""
    Embedding.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["image", "model"], update_fields=["vector", "item"]
    )
