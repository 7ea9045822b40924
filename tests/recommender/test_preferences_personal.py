"""Cold start, rate-these-next, stored descriptors and the personal predictor through the web app.

Vectors are written directly (a small test model), on real Postgres+pgvector.
"""
from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from catalog.models import Item, ItemImage
from ml.descriptors import DESCRIPTOR_NAMES, DESCRIPTOR_VERSION
from recommender.embeddings import active_model_switch
from recommender.models import (
    Embedding,
    EmbeddingModel,
    ItemDescriptor,
    ServedPredictor,
)
from recommender.preferences import selectors
from recommender.preferences.fitting import descriptors_fill, preference_model_fit
from recommender.preferences.services import visitors_simulate, vote_upsert
from tests.photos import image_bytes

DIM = 16
LABELS = ("dress", "shoes", "hat")


def vectors_for(collection, n_per_label: int = 15, seed: int = 0) -> list[Item]:
    """Items in one tight cluster of vectors per label, with file-less images, under a test model."""
    rng = np.random.default_rng(seed)
    model = EmbeddingModel.objects.create(name=f"personal-test-{collection.slug}", version="t1", dimension=DIM)
    names = [label for label in LABELS for _ in range(n_per_label)]
    vectors = np.repeat(np.eye(DIM)[: len(LABELS)], n_per_label, axis=0) + 0.1 * rng.normal(size=(len(names), DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = Item.objects.bulk_create([Item(collection=collection, title=f"{label} {i}", label=label)
                                      for i, label in enumerate(names)])
    images = ItemImage.objects.bulk_create([
        ItemImage(item=item, collection=collection, original=f"originals/q-{item.pk}.jpg", sha256=f"{item.pk:064x}",
                  status=ItemImage.Status.READY) for item in items])
    Embedding.objects.bulk_create([Embedding(image=img, item_id=img.item_id, model=model, vector=v.tolist())
                                   for img, v in zip(images, vectors)])
    active_model_switch(collection, model)
    return items


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def simulated(collection):
    """45 items, 20 simulated visitors of every taste family, the personal predictor served and fitted."""
    items = vectors_for(collection)
    visitors_simulate(collection, n_users=20, votes_per_user=20, test_items=5)
    ServedPredictor.objects.create(collection=collection, name="personal")
    preference_model_fit(collection)
    return items


@pytest.mark.django_db
def test_before_any_vote_the_feed_is_popular_across_labels_and_after_one_it_is_personal(visitor, collection,
                                                                                         simulated):
    answer = selectors.feed_answer(visitor, collection, 6)
    assert (answer.predictor, answer.n_votes) == ("popularity", 0)
    assert sorted(p.item.label for p in answer.predictions) == sorted(LABELS * 2)
    hats = [i for i in simulated if i.label == "hat"]
    vote_upsert(visitor, hats[0].pk, "like")
    answer = selectors.feed_answer(visitor, collection, 6)
    assert (answer.predictor, answer.n_votes) == ("personal", 1)
    assert hats[0].pk not in {p.item.pk for p in answer.predictions}


@pytest.mark.django_db
def test_every_vote_changes_the_next_prediction_of_the_personal_model(visitor, collection, simulated):
    client = client_for(visitor)
    hats = [i for i in simulated if i.label == "hat"]
    asked = [h.pk for h in hats[10:]]
    previous = None
    for n, hat in enumerate(hats[:10], start=1):
        assert client.put(f"/api/votes/{hat.pk}/", {"value": "like"}, format="json").status_code == 200
        p = [row["p_like"] for row in client.post("/api/me/predict/", {"items": asked}, format="json").data]
        if previous is not None:
            assert np.mean(p) > np.mean(previous), f"vote {n} did not raise P(like) of the other hats"
        previous = p


@pytest.mark.django_db
def test_rate_next_offers_unrated_items_across_labels(visitor, collection, simulated):
    client = client_for(visitor)
    rows = client.get("/api/me/next/", {"collection": "garments", "k": 6}).data
    assert len(rows) == 6 and sorted(r["item"]["label"] for r in rows) == sorted(LABELS * 2)
    assert set(rows[0]) == {"item", "p_like", "decision", "because"}
    vote_upsert(visitor, rows[0]["item"]["id"], "like")
    again = client.get("/api/me/next/", {"collection": "garments", "k": 6}).data
    assert rows[0]["item"]["id"] not in {r["item"]["id"] for r in again}
    assert client.get("/api/me/next/", {"k": 0}).status_code == 400
    assert client.get("/api/me/next/", {"k": "many"}).status_code == 400
    assert client.get("/api/me/next/", {"collection": "nope"}).status_code == 404
    assert APIClient().get("/api/me/next/").status_code == 401


@pytest.mark.django_db
def test_the_pages_say_which_predictor_answered_from_how_many_votes(client, visitor, collection, simulated):
    client.force_login(visitor)
    page = client.get("/for-you/?collection=garments").content.decode()
    assert 'Answered by <strong class="predictor">popularity</strong> from <strong>0</strong>' in page
    assert "most popular items" in page and "/for-you/next/" in page
    vote_upsert(visitor, simulated[0].pk, "like")
    page = client.get("/for-you/?collection=garments").content.decode()
    assert 'Answered by <strong class="predictor">personal</strong> from <strong>1</strong> of your vote.' in page
    rate = client.get("/for-you/next/?collection=garments")
    assert rate.status_code == 200
    text = rate.content.decode()
    assert "Rate these next" in text and text.count('class="card feed-card"') == 12


@pytest.mark.django_db
def test_the_fit_stores_missing_descriptors_once(collection, make_item):
    red = make_item("dress", data=image_bytes(color=(220, 30, 30)))
    blue = make_item("shoes", data=image_bytes(color=(30, 30, 220)))
    ItemImage.objects.filter(item__in=[red, blue]).update(status=ItemImage.Status.READY)
    assert descriptors_fill(collection) == 2
    stored = {d.item_id: dict(zip(DESCRIPTOR_NAMES, d.values)) for d in ItemDescriptor.objects.all()}
    assert {d.version for d in ItemDescriptor.objects.all()} == {DESCRIPTOR_VERSION}
    assert stored[red.pk]["red_green"] > 0.25 > abs(stored[blue.pk]["red_green"])
    assert stored[blue.pk]["yellow_blue"] < -0.25 < 0.1 < stored[red.pk]["yellow_blue"]
    assert descriptors_fill(collection) == 0  # computed once
