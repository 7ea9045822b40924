"""Votes per label reach catalog's statistics through its openings: the page slot, ``/api/stats/votes/``
and a ``catalog_stats`` table — catalog itself never imports recommender."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from catalog.services import collection_create
from recommender.preferences.services import vote_upsert
from recommender.preferences.vote_stats import vote_stats


@pytest.fixture
def votes(make_item, visitor, staff_user):
    """Dresses: 3 likes, 1 dislike; the hat: 2 dislikes. Two voters."""
    dresses = [make_item("dress") for _ in range(2)]
    hat = make_item("hat")
    for user in (visitor, staff_user):
        vote_upsert(user, dresses[0].pk, "like")
        vote_upsert(user, hat.pk, "dislike")
    vote_upsert(visitor, dresses[1].pk, "like")
    vote_upsert(staff_user, dresses[1].pk, "dislike")


@pytest.mark.django_db
def test_vote_stats_per_label_and_likes_share(collection, votes):
    stats = vote_stats(collection)
    assert (stats.likes, stats.dislikes, stats.voters, stats.like_share) == (3, 3, 2, 0.5)
    assert [(v.label, v.likes, v.dislikes, v.total, v.like_share) for v in stats.labels] == [
        ("dress", 3, 1, 4, 0.75), ("hat", 0, 2, 2, 0.0)]


@pytest.mark.django_db
def test_stats_page_shows_votes_per_label_in_the_collection_section(client, collection, votes):
    collection_create(name="Cafés", slug="cafes", kind="cafe")
    html = client.get("/stats/").content.decode()
    garments = html[html.index('id="stats-garments"'):]
    block = garments[garments.index('<div class="vote-stats">'):]
    assert "6 votes from 2 voters: <strong>50% likes</strong> (3 likes, 3 dislikes)." in block
    assert ('<tr><td>dress</td><td class="num">3</td><td class="num">1</td><td class="num">75%</td></tr>'
            in block)
    assert "<title>hat · dislikes: 2</title>" in block
    cafes = html[html.index('id="stats-cafes"'):html.index('id="stats-garments"')]
    assert "No votes yet." in cafes


@pytest.mark.django_db
def test_votes_api_gives_the_same_figures(api_client, votes):
    (garments,) = api_client.get("/api/stats/votes/", {"collection": "garments"}).json()
    assert garments == {
        "collection": "garments", "name": "Garments", "likes": 3, "dislikes": 3, "voters": 2, "like_share": 0.5,
        "labels": [{"label": "dress", "likes": 3, "dislikes": 1, "total": 4, "like_share": 0.75},
                   {"label": "hat", "likes": 0, "dislikes": 2, "total": 2, "like_share": 0.0}],
    }
    assert api_client.get("/api/stats/votes/", {"collection": "nope"}).status_code == 404


@pytest.mark.django_db
def test_votes_api_without_votes_has_a_null_share(api_client, collection):
    (garments,) = api_client.get("/api/stats/votes/").json()
    assert garments["like_share"] is None and garments["labels"] == []


@pytest.mark.django_db
def test_openapi_schema_declares_the_votes_response(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    response = schema["paths"]["/api/stats/votes/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert response["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/VoteStats"}}
    assert set(schema["components"]["schemas"]["LabelVotes"]["properties"]) == {
        "label", "likes", "dislikes", "total", "like_share"}


@pytest.mark.django_db
def test_catalog_stats_command_prints_the_votes_table(votes):
    out = io.StringIO()
    call_command("catalog_stats", stdout=out)
    lines = out.getvalue().splitlines()
    start = lines.index("votes per label (2 voters, 50% likes)")
    assert [line.split() for line in lines[start + 1:start + 4]] == [
        ["label", "likes", "dislikes", "like", "%"], ["dress", "3", "1", "75.0"], ["hat", "0", "2", "0.0"]]
