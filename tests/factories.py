"""Test rows and vectors: factory-boy factories and the small vector models tests write directly.

Test modules import what they share from here or ``tests.photos`` (never from each other or from
conftest.py). The factories write rows directly, for data a test only needs to exist (users,
file-less items and images); items with real image files go through the catalogue service (the
``make_item`` fixture).
"""
from __future__ import annotations

import factory
import numpy as np
from django.conf import settings
from factory.django import DjangoModelFactory, Password

from catalog.models import Collection, Item, ItemImage
from recommender.embeddings import active_model_switch, collection_embedding_ensure, embeddings_upsert
from recommender.embeddings.services import hnsw_index_ensure
from recommender.models import Embedding, EmbeddingModel

VECTOR_DIM = 8  # the dimension of the small test models whose vectors tests write directly


# --- rows --------------------------------------------------------------------------------------

class UserFactory(DjangoModelFactory):
    class Meta:
        model = settings.AUTH_USER_MODEL

    username = factory.Sequence(lambda n: f"user-{n}")
    password = Password("pw-test-user-1")


class CollectionFactory(DjangoModelFactory):
    class Meta:
        model = Collection

    name = factory.Sequence(lambda n: f"Collection {n}")
    slug = factory.Sequence(lambda n: f"collection-{n}")
    remove_background = False


class ItemFactory(DjangoModelFactory):
    """A catalogue row without an image (votes, duplicates, and with ``ready_images`` bulk catalogues)."""

    class Meta:
        model = Item

    collection = factory.SubFactory(CollectionFactory)
    title = factory.Sequence(lambda n: f"item {n}")


class ItemImageFactory(DjangoModelFactory):
    """A READY image row whose file is never read: enough for searches over directly written vectors."""

    class Meta:
        model = ItemImage

    item = factory.SubFactory(ItemFactory)
    collection = factory.SelfAttribute("item.collection")
    original = factory.Sequence(lambda n: f"originals/test-{n}.jpg")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    status = ItemImage.Status.READY


# --- vectors -----------------------------------------------------------------------------------

def unit_vectors(rng: np.random.Generator, n: int, dim: int = VECTOR_DIM) -> np.ndarray:
    """``n`` random unit vectors (float32)."""
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def vector_model(name: str = "test-vectors", dim: int = VECTOR_DIM) -> EmbeddingModel:
    """A model row with its partial HNSW index, made by the ensure step."""
    model = EmbeddingModel.objects.create(name=name, version="t1", dimension=dim)
    hnsw_index_ensure(model)
    return model


def vector_put(model: EmbeddingModel, image: ItemImage, vector) -> None:
    """Store ``vector`` as ``image``'s embedding under ``model`` (through the upsert service)."""
    embeddings_upsert([Embedding(image=image, item_id=image.item_id, model=model, vector=list(map(float, vector)))])


def items_with_vectors(model: EmbeddingModel, vectors: np.ndarray, items: list[Item]) -> list[Item]:
    """Save the built ``items`` in bulk, each with one file-less ready image holding its row of ``vectors``."""
    items = Item.objects.bulk_create(items)
    images = ItemImage.objects.bulk_create([ItemImageFactory.build(item=item) for item in items])
    Embedding.objects.bulk_create([Embedding(image=img, item_id=img.item_id, model=model, vector=vec.tolist())
                                   for img, vec in zip(images, vectors)])
    return items


def vector_catalogue(collection: Collection, n_per_label: int = 15, labels=("dress", "shoes", "hat"),
                     seed: int = 0, dim: int = 16) -> list[Item]:
    """Items in one tight cluster of vectors per label, under a test model the collection searches.

    Items are named ``<label>_<index:03d>.jpg`` (their source name), indexes counting over all labels.
    """
    rng = np.random.default_rng(seed)
    model = vector_model(f"pref-test-{collection.slug}", dim)
    names = [label for label in labels for _ in range(n_per_label)]
    vectors = np.repeat(np.eye(dim)[: len(labels)], n_per_label, axis=0) + 0.1 * rng.normal(size=(len(names), dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = items_with_vectors(model, vectors, [
        ItemFactory.build(collection=collection, title=f"{label} {i}", label=label, source_name=f"{label}_{i:03d}.jpg")
        for i, label in enumerate(names)])
    active_model_switch(collection, model)
    return items


def blob_vectors(sizes: list[int], seed: int = 0, spread: float = 0.25, dim: int = 1280) -> list[np.ndarray]:
    """Unit vectors in ``len(sizes)`` well separated groups, group by group (1280-d: the collection's
    default model, efficientnet-lite0)."""
    rng = np.random.default_rng(seed)
    out = []
    for centre, n in zip(rng.normal(size=(len(sizes), dim)), sizes):
        for _ in range(n):
            v = centre + spread * rng.normal(size=dim)
            out.append((v / np.linalg.norm(v)).astype(np.float32))
    return out


def embed(items: list[Item], vectors: list[np.ndarray]) -> None:
    """Give items known vectors under their collection's active model and mark their images ready."""
    model = collection_embedding_ensure(items[0].collection)
    embeddings_upsert([Embedding(image=item.images.first(), item=item, model=model, vector=v.tolist())
                       for item, v in zip(items, vectors)])
    ItemImage.objects.filter(item__in=items).update(status=ItemImage.Status.READY)

