"""Preference models are fitted in Celery and loaded through the one bounded cache; requests never fit."""
from __future__ import annotations

import pytest
from django.test import override_settings

from recommender import artifacts
from recommender.models import PreferenceModel
from recommender.preferences import selectors, tasks
from recommender.preferences.fitting import preference_model_fit
from recommender.preferences.services import vote_upsert
from tests.factories import vector_catalogue


@pytest.mark.django_db
def test_a_feed_before_the_first_fit_says_so_and_fits_nothing(visitor, collection, client_for):
    vector_catalogue(collection)
    response = client_for(visitor).get("/api/me/feed/?collection=garments")
    assert response.status_code == 409
    assert "being prepared" in response.json()["detail"]
    assert not PreferenceModel.objects.exists()


@pytest.mark.django_db
def test_each_fit_is_a_new_version_and_the_old_file_goes(collection):
    vector_catalogue(collection)
    first = preference_model_fit(collection)
    second = preference_model_fit(collection)
    assert (first.version, second.version) == (1, 2)
    assert not artifacts.artifact_path(first.artifact).exists()
    assert artifacts.artifact_path(second.artifact).is_file()


@pytest.mark.django_db
def test_the_model_cache_is_bounded_and_evicts_the_least_recently_used():
    with override_settings(STYLESITE_ARTIFACT_CACHE_SIZE=2):
        loads = []
        for key in ("a", "b", "a", "c"):
            artifacts.artifact_load(("test", key), lambda key=key: loads.append(key) or key)
        cached = [k for k in artifacts.artifact_cache_keys() if k[0] == "test"]
    assert loads == ["a", "b", "c"]  # "a" came from the cache the second time
    assert cached == [("test", "a"), ("test", "c")]  # "b" was least recently used


@pytest.mark.django_db
def test_a_burst_of_votes_queues_one_fit_and_a_vote_during_the_fit_queues_one_more(
        visitor, collection, monkeypatch, django_capture_on_commit_callbacks):
    items = vector_catalogue(collection)
    preference_model_fit(collection)
    queued: list[int] = []
    monkeypatch.setattr(tasks.preference_model_fit_task, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        for item in items[:3]:
            vote_upsert(visitor, item.pk, "like")
    assert queued == [collection.pk]  # one fit for the three votes

    # The queued fit runs; a vote arrives while it runs, so it queues exactly one more when done.
    real_fit = tasks.preference_model_fit

    def fit_while_a_vote_arrives(c):
        with django_capture_on_commit_callbacks(execute=True):
            vote_upsert(visitor, items[3].pk, "dislike")
        return real_fit(c)

    monkeypatch.setattr(tasks, "preference_model_fit", fit_while_a_vote_arrives)
    assert tasks.preference_model_fit_task.run(collection.pk) == 2
    assert queued == [collection.pk, collection.pk]
    monkeypatch.setattr(tasks, "preference_model_fit", real_fit)
    assert tasks.preference_model_fit_task.run(collection.pk) == 3
    assert queued == [collection.pk, collection.pk]  # nothing new since: no further fit
    assert PreferenceModel.objects.get(collection=collection).votes == 4


@pytest.mark.django_db(transaction=True)
def test_votes_reach_the_model_through_a_real_worker(visitor, collection, worker, wait_for):
    items = vector_catalogue(collection)
    preference_model_fit(collection)
    for item in items[:3]:
        vote_upsert(visitor, item.pk, "like")
    wait_for(lambda: PreferenceModel.objects.get(collection=collection).votes == 3, what="the refit")
    assert len(selectors.feed(visitor, collection, 5)) == 5


@pytest.mark.django_db
def test_a_drained_ingest_queues_the_first_fit(collection, monkeypatch, django_capture_on_commit_callbacks):
    from catalog.models import ItemImage
    from recommender.pipeline import ingest_drained

    queued: list[int] = []
    monkeypatch.setattr(tasks.preference_model_fit_task, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        ingest_drained.send(sender=ItemImage, collection_id=collection.pk)
    assert queued == [collection.pk]


@pytest.mark.django_db
def test_new_vectors_since_the_fit_queue_a_refit_once_per_recheck_window(
        visitor, collection, monkeypatch, django_capture_on_commit_callbacks):
    import numpy as np
    from django.core.cache import cache

    from recommender.models import ActiveEmbeddingModel
    from tests.factories import ItemFactory, items_with_vectors

    vector_catalogue(collection)
    preference_model_fit(collection)
    queued: list[int] = []
    monkeypatch.setattr(tasks.preference_model_fit_task, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        selectors.fitted_preferences(collection)
    assert queued == []  # nothing changed since the fit

    model = ActiveEmbeddingModel.objects.get(collection=collection).model
    items_with_vectors(model, np.eye(model.dimension)[:1], [ItemFactory.build(collection=collection)])
    with django_capture_on_commit_callbacks(execute=True):
        selectors.fitted_preferences(collection)
    assert queued == []  # inside the window of the first look: the vectors are not counted again

    cache.delete(f"preferences:stale-check:{collection.pk}")  # the window has passed
    with django_capture_on_commit_callbacks(execute=True):
        selectors.fitted_preferences(collection)
    assert queued == [collection.pk]
