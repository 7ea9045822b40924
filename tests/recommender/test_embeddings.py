"""The embeddings area's one ensure step: reads never create rows or indexes."""
from __future__ import annotations

import pytest
from django.db import connection

from catalog.services import ItemFields, item_create
from recommender.embeddings import active_model_or_none, collection_embedding_ensure
from recommender.models import ActiveEmbeddingModel, EmbeddingModel
from tests.photos import image_bytes


def _index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
        return cursor.fetchone() is not None


@pytest.mark.django_db
def test_gets_on_a_collection_without_a_model_create_nothing(client, api_client, collection):
    item = item_create(collection=collection, fields=ItemFields(title="plain dress", label="dress"))
    models_before = EmbeddingModel.objects.count()

    assert client.get(f"/items/{item.pk}/").status_code == 200  # look-alikes say why there are none
    assert api_client.get(f"/api/items/{item.pk}/similar/").status_code == 409
    assert api_client.get("/api/styles/map/?collection=garments").status_code == 200
    assert api_client.post("/api/search/image/", {"image": _upload()}, format="multipart").status_code == 409

    assert EmbeddingModel.objects.count() == models_before
    assert not ActiveEmbeddingModel.objects.filter(collection=collection).exists()
    assert active_model_or_none(collection) is None


@pytest.mark.django_db
def test_a_get_does_not_recreate_a_dropped_index_but_the_ensure_step_does(api_client, collection):
    model = collection_embedding_ensure(collection)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {model.index_name}")
    item = item_create(collection=collection, fields=ItemFields(title="plain dress", label="dress"))

    assert api_client.get(f"/api/items/{item.pk}/similar/").status_code == 409  # no vector yet
    assert not _index_exists(model.index_name)

    assert collection_embedding_ensure(collection) == model
    assert _index_exists(model.index_name)


def _upload():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("q.jpg", image_bytes(size=(64, 64)), content_type="image/jpeg")
