"""The style classifier on real demo photos embedded by the real pipeline (the default backbone)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from catalog.models import Item
from catalog.services import item_relabel
from recommender.models import StyleClassifier, StylePrediction
from recommender.styles import curation
from recommender.styles.selectors import style_guess_for_vector

LABELS = ("dress", "hat", "pants", "shoes")
PER_SPLIT = {"train": 8, "validation": 3, "test": 4}


@pytest.fixture
def demo_items(processed_photo_items):
    return processed_photo_items(LABELS, PER_SPLIT)


@pytest.mark.django_db
def test_classifier_beats_majority_and_is_retrained_only_when_inputs_change(
        collection, demo_items, settings, tmp_path, api_client):
    first = curation.classifier_run(collection)
    assert first["retrained"] and first["version"] == 1
    # 16 test photos, 4 per label: always guessing one label scores 4/16 = 0.25.
    assert first["test_accuracy"] >= 0.75
    classifier = StyleClassifier.objects.get()
    assert (Path(settings.STYLESITE_ARTIFACT_DIR) / classifier.artifact).is_file()
    assert classifier.test["n"] == 16 and len(classifier.test["confusion"]) == 4

    again = curation.classifier_run(collection)
    assert not again["retrained"] and again["version"] == 1 and StyleClassifier.objects.count() == 1

    # A curator's relabel changes the training labels: a new version is trained.
    item_relabel(next(i for i in demo_items if i.split == "train"), "hat")
    third = curation.classifier_run(collection)
    assert third["retrained"] and third["version"] == 2

    body = api_client.get(reverse("api-classifier"), {"collection": collection.slug}).json()
    assert body["version"] == 2 and {"accuracy", "macro_f1", "per_class", "confusion"} <= set(body["test"])
    shoe = next(i for i in demo_items if i.label == "shoes" and i.split == "test")
    guess = StylePrediction.objects.get(item=shoe)
    assert guess.label == "shoes" and guess.probability > 0.5
    vector = np.asarray(shoe.embeddings.get().vector, dtype=np.float32)
    label, probability = style_guess_for_vector(collection, vector)
    assert label == "shoes" and probability == pytest.approx(guess.probability, abs=1e-3)
    assert style_guess_for_vector(collection, vector[:10]) is None
    with shoe.images.get().original.open("rb") as photo:
        searched = api_client.post(reverse("api-search-image"), {"image": photo, "collection": collection.slug},
                                   format="multipart").json()
    assert searched["query"]["looks_like"]["label"] == "shoes"
    top = api_client.get(reverse("api-classifier-top"), {"item": shoe.pk, "limit": 3}).json()
    assert top["label"] == "shoes" and len(top["items"]) == 3
    assert all(Item.objects.get(pk=i["id"]).style_prediction.label == "shoes" for i in top["items"])
    assert api_client.get(reverse("api-classifier-top"), {"limit": 0, "item": shoe.pk}).status_code == 400


@pytest.mark.django_db
def test_classifier_api_says_when_there_is_none(collection, api_client):
    response = api_client.get(reverse("api-classifier"), {"collection": collection.slug})
    assert response.status_code == 409 and "no style classifier" in response.json()["detail"]


