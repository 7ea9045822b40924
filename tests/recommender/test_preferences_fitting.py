"""Preference models are fitted in Celery and loaded through the one bounded cache; requests never fit."""
from __future__ import annotations

import pytest
from django.test import override_settings

from recommender import artifacts
from recommender.models import PreferenceModel
from recommender.preferences import selectors
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


@pytest.mark.django_db(transaction=True)
def test_three_votes_are_refitted_once_in_celery_after_the_debounce(visitor, collection, worker, settings,
                                                                     wait_for):
    settings.STYLESITE_PREFERENCE_REFIT_SECONDS = 1  # the cache counts whole seconds
    items = vector_catalogue(collection)
    preference_model_fit(collection)
    for item in items[:3]:
        vote_upsert(visitor, item.pk, "like")  # three votes, one refit after the debounce window
    wait_for(lambda: PreferenceModel.objects.get(collection=collection).votes == 3, what="the refit")
    fitted = PreferenceModel.objects.get(collection=collection)
    assert (fitted.version, fitted.votes) == (2, 3)
    assert len(selectors.feed(visitor, collection, 5)) == 5
