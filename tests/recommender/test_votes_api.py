"""The votes API: own votes only, anonymous refused (401), CSRF for session clients, one row under concurrency."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from recommender.models import Vote
from tests.factories import ItemFactory, UserFactory


@pytest.fixture
def two_items(collection):
    return ItemFactory.create_batch(2, collection=collection)


@pytest.mark.django_db
def test_anonymous_users_are_refused_everywhere_with_401(api_client, two_items):
    item = two_items[0]
    Vote.objects.create(user=UserFactory(), item=item, value="like")
    calls = [("get", "/api/votes/", None), ("get", f"/api/votes/{item.pk}/", None),
             ("put", f"/api/votes/{item.pk}/", {"value": "like"}), ("delete", f"/api/votes/{item.pk}/", None),
             ("get", "/api/me/feed/", None), ("post", "/api/me/predict/", {"items": [item.pk]})]
    for method, url, body in calls:
        response = getattr(api_client, method)(url, body, format="json")
        # Token authentication comes first, so the answer names the missing credentials: 401, not 403.
        assert response.status_code == 401, (method, url)
        assert response["WWW-Authenticate"] == "Token", (method, url)
    assert Vote.objects.count() == 1


@pytest.mark.django_db
def test_users_read_change_and_delete_only_their_own_votes(visitor, two_items, client_for):
    other = UserFactory()
    mine, theirs = client_for(visitor), client_for(other)
    a, b = two_items
    assert mine.put(f"/api/votes/{a.pk}/", {"value": "like"}, format="json").data["value"] == "like"
    assert theirs.put(f"/api/votes/{a.pk}/", {"value": "dislike"}, format="json").status_code == 200
    assert theirs.put(f"/api/votes/{b.pk}/", {"value": "like"}, format="json").status_code == 200

    listed = mine.get("/api/votes/").data["results"]
    assert [(v["item_id"], v["value"]) for v in listed] == [(a.pk, "like")]
    assert mine.get(f"/api/votes/{b.pk}/").status_code == 404  # other's vote is invisible

    # changing is an idempotent upsert that touches only the caller's row
    for _ in range(2):
        assert mine.put(f"/api/votes/{a.pk}/", {"value": "dislike"}, format="json").data["value"] == "dislike"
    assert Vote.objects.get(user=visitor, item=a).value == "dislike"
    assert Vote.objects.get(user=other, item=a).value == "dislike"
    assert Vote.objects.filter(user=visitor).count() == 1

    # deleting someone else's vote is impossible: the caller has none there
    assert mine.delete(f"/api/votes/{b.pk}/").status_code == 404
    assert Vote.objects.filter(user=other, item=b).exists()
    assert mine.delete(f"/api/votes/{a.pk}/").status_code == 204
    assert not Vote.objects.filter(user=visitor).exists()
    assert Vote.objects.filter(user=other).count() == 2
    assert mine.delete(f"/api/votes/{a.pk}/").status_code == 404


@pytest.mark.django_db
def test_bad_votes_get_a_clear_400_and_change_nothing(visitor, two_items, client_for):
    client = client_for(visitor)
    item = two_items[0]
    client.put(f"/api/votes/{item.pk}/", {"value": "like"}, format="json")
    for body in ({"value": "love"}, {}, {"value": ""}, {"value": ["like"]}):
        response = client.put(f"/api/votes/{item.pk}/", body, format="json")
        assert response.status_code == 400 and response.data["detail"].startswith("value:"), body
    assert client.put("/api/votes/999999/", {"value": "like"}, format="json").status_code == 404
    assert list(Vote.objects.values_list("item_id", "value")) == [(item.pk, "like")]


@pytest.mark.django_db
def test_session_clients_need_the_csrf_token(visitor, two_items):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="visitor", password="pw-visitor-1")
    url = f"/api/votes/{two_items[0].pk}/"
    refused = client.put(url, {"value": "like"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.data["detail"]
    assert client.delete(url).status_code == 403
    assert not Vote.objects.exists()

    page = client.get(f"/items/{two_items[0].pk}/")  # the item page sets the CSRF cookie
    token = page.cookies["csrftoken"].value
    assert client.put(url, {"value": "like"}, format="json", HTTP_X_CSRFTOKEN=token).status_code == 200
    assert Vote.objects.get().value == "like"


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_identical_votes_leave_one_row(visitor, collection, client_for):
    item = ItemFactory(collection=collection, title="contested")

    def vote(_):
        try:
            return client_for(visitor).put(f"/api/votes/{item.pk}/", {"value": "like"}, format="json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(vote, range(50)))
    assert codes == [200] * 50
    assert Vote.objects.filter(user=visitor, item=item).count() == 1
