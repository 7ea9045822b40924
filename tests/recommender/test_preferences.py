"""Feed, predictions, import, simulation, evaluation and pages of the preference area.

Vectors are written directly (a small test model, exact and fast), on real Postgres+pgvector.
"""
from __future__ import annotations

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework import serializers

from catalog.models import Item
from recommender.models import PreferenceReport, ServedPredictor, Vote, VoterProfile
from recommender.preferences import selectors
from recommender.preferences.api import PredictionSerializer
from recommender.preferences.fitting import preference_model_fit
from recommender.preferences.services import vote_upsert
from tests.factories import vector_catalogue


@pytest.fixture
def catalogue(collection):
    items = vector_catalogue(collection)
    preference_model_fit(collection)  # what the Celery task does after votes or new vectors
    return items


def by_label(items, label):
    return [i for i in items if i.label == label]


@pytest.mark.django_db
def test_feed_ranks_the_liked_style_first_and_explains_it(visitor, catalogue, client_for):
    dresses, shoes = by_label(catalogue, "dress"), by_label(catalogue, "shoes")
    for item in dresses[:3]:
        vote_upsert(visitor, item.pk, "like")
    for item in shoes[:3]:
        vote_upsert(visitor, item.pk, "dislike")

    feed = client_for(visitor).get("/api/me/feed/", {"k": 10, "collection": "garments"}).data
    assert len(feed) == 10
    voted = {i.pk for i in dresses[:3] + shoes[:3]}
    assert not voted & {row["item"]["id"] for row in feed}
    # The 12 unrated dresses sit in the cluster of the three likes: they fill the first ten places.
    assert {row["item"]["label"] for row in feed} == {"dress"}
    probabilities = [row["p_like"] for row in feed]
    assert probabilities == sorted(probabilities, reverse=True) and 0.5 < probabilities[0] < 1
    assert {row["decision"] for row in feed} == {"like"}
    top = feed[0]
    assert [b["value"] for b in top["because"]] == ["like"] * 3
    assert {b["item_id"] for b in top["because"]} == {i.pk for i in dresses[:3]}
    assert top["because"][0]["similarity"] >= top["because"][-1]["similarity"]


@pytest.mark.django_db
def test_a_new_vote_changes_the_next_feed(visitor, catalogue, client_for):
    dresses, hats = by_label(catalogue, "dress"), by_label(catalogue, "hat")
    vote_upsert(visitor, dresses[0].pk, "like")
    vote_upsert(visitor, hats[0].pk, "dislike")
    client = client_for(visitor)
    before = client.get("/api/me/feed/", {"k": 45}).data
    assert client.put(f"/api/votes/{hats[1].pk}/", {"value": "like"}, format="json").status_code == 200
    assert client.put(f"/api/votes/{hats[0].pk}/", {"value": "like"}, format="json").status_code == 200
    after = client.get("/api/me/feed/", {"k": 45}).data
    assert hats[1].pk in {r["item"]["id"] for r in before} - {r["item"]["id"] for r in after}
    p_before = {r["item"]["id"]: r["p_like"] for r in before}
    p_after = {r["item"]["id"]: r["p_like"] for r in after}
    gains = [p_after[h.pk] - p_before[h.pk] for h in hats[2:]]
    assert np.mean(gains) > 0.2 and min(gains) > 0
    assert [r["item"]["id"] for r in after[:10]] != [r["item"]["id"] for r in before[:10]]


@pytest.mark.django_db
def test_predict_answers_in_the_asked_order_and_reports_bad_ids(visitor, catalogue, client_for):
    vote_upsert(visitor, catalogue[0].pk, "like")
    client = client_for(visitor)
    ids = [catalogue[20].pk, catalogue[0].pk, catalogue[40].pk]
    rows = client.post("/api/me/predict/", {"items": ids}, format="json").data
    assert [r["item"]["id"] for r in rows] == ids
    assert set(rows[0]) == {"item", "p_like", "decision", "because"}
    shoe, dress, hat = (r["p_like"] for r in rows)
    assert dress > max(shoe, hat)  # the liked item's own cluster
    # One vote is too little to learn from, so label_prior answers: the liked label's smoothed rate
    # is 7/9, the others 2/3. Thin evidence keeps the band at least 0.5 ± 0.25 / sqrt(2) ≈ 0.32 to 0.68:
    # only the dress clears it.
    assert [round(r["p_like"], 3) for r in rows] == [0.667, 0.778, 0.667]
    assert [r["decision"] for r in rows] == ["unsure", "like", "unsure"]
    assert all(b["item_id"] != catalogue[0].pk for b in rows[1]["because"])  # an item never explains itself
    # The lean output is exactly what the schema's declaration (DRF's serializers) would write.
    response = client.post("/api/me/predict/", {"items": ids}, format="json")
    answered = selectors.predict_items(visitor, ids)
    declaration = PredictionSerializer(context={"request": response.wsgi_request})
    declared = [serializers.Serializer.to_representation(declaration, prediction) for prediction in answered]
    assert response.json() == json.loads(json.dumps(declared))
    assert response.json()[0]["because"][0]["item_id"] == catalogue[0].pk  # the liked dress explains the others
    for body, code in (({"items": []}, 400), ({"items": ["x"]}, 400), ({}, 400), ({"items": [999999]}, 404)):
        assert client.post("/api/me/predict/", body, format="json").status_code == code, body
    assert client.get("/api/me/feed/", {"k": "lots"}).status_code == 400
    assert client.get("/api/me/feed/", {"k": 0}).status_code == 400
    assert client.get("/api/me/feed/", {"collection": "nope"}).status_code == 404


def write_csv(path, rows):
    path.write_text("respondent_id,image,vote,split\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.mark.django_db
def test_import_csv_is_idempotent_and_reports_unknown_images(collection, catalogue, tmp_path):
    path = write_csv(tmp_path / "votes.csv", [
        ("R1", "dress_000.jpg", 1, "train"), ("R1", "shoes_015", 2, "validation"),
        ("R2", "dress_000.png", "like", ""), ("R2", "missing_999.jpg", 1, "train"), ("R3", "hat_030.jpg", 7, "")])
    out = StringIO()
    call_command("import_votes", str(path), collection="garments", stdout=out)
    assert "3 votes created" in out.getvalue()
    assert "missing_999.jpg" in out.getvalue() and "not '7'" in out.getvalue()
    votes = {(v.user.username, v.item.source_name): (v.value, v.split, v.source) for v in Vote.objects.all()}
    assert votes == {("respondent-R1", "dress_000.jpg"): ("like", "train", "import"),
                     ("respondent-R1", "shoes_015.jpg"): ("dislike", "validation", "import"),
                     ("respondent-R2", "dress_000.jpg"): ("like", "none", "import")}
    respondent = VoterProfile.objects.get(external_id="R1").user
    assert not respondent.has_usable_password()

    again = StringIO()
    call_command("import_votes", str(path), collection="garments", stdout=again)
    assert "0 votes created, 0 changed, 3 unchanged" in again.getvalue()
    assert Vote.objects.count() == 3 and VoterProfile.objects.count() == 2
    (tmp_path / "bad.csv").write_text("who,what\n1,2\n")
    with pytest.raises(CommandError, match="respondent_id"):
        call_command("import_votes", str(tmp_path / "bad.csv"), collection="garments", stdout=StringIO())


@pytest.mark.django_db
def test_import_json_folder_finds_keys_at_any_depth(collection, catalogue, tmp_path):
    Item.objects.filter(pk=catalogue[0].pk).update(source_name="W_03412_50_classic_W.jpg")
    for split, name, body in [
        ("train", "W_03412_50_classic_W_023425.json", {"survey": {"R_id": 17, "answers": [{"Q4": 3}, {"Q5": 1}]}}),
        ("validation", "shoes_016_000002.json", {"R_id": "17", "Q5": "2"}),
        ("train", "unknown_photo_000003.json", {"R_id": "17", "Q5": 1}),
        ("train", "broken_000004.json", None),
    ]:
        (tmp_path / split).mkdir(exist_ok=True)
        (tmp_path / split / name).write_text("{not json" if body is None else json.dumps(body))
    out = StringIO()
    call_command("import_votes", str(tmp_path), collection="garments", stdout=out)
    assert "2 votes created" in out.getvalue() and "unknown_photo" in out.getvalue() and "broken" in out.getvalue()
    assert sorted(Vote.objects.values_list("item__source_name", "value", "split")) == [
        ("W_03412_50_classic_W.jpg", "like", "train"), ("shoes_016.jpg", "dislike", "validation")]
    call_command("import_votes", str(tmp_path), collection="garments", stdout=StringIO())
    assert Vote.objects.count() == 2 and VoterProfile.objects.get().external_id == "17"


@pytest.mark.django_db
def test_simulation_is_idempotent_and_evaluation_serves_the_best(collection, catalogue):
    out = StringIO()
    call_command("simulate_visitors", collection="garments", users=30, votes=20, test_items=10, stdout=out)
    assert "Simulated 30 visitors, 900 votes" in out.getvalue() and "embeddings" in out.getvalue()
    call_command("simulate_visitors", collection="garments", users=30, votes=20, test_items=10, stdout=StringIO())
    assert Vote.objects.count() == 900
    assert VoterProfile.objects.filter(kind="simulated").count() == 30
    assert set(Vote.objects.values_list("split", flat=True)) == {"train", "validation"}

    report_out = StringIO()
    call_command("evaluate_preferences", collection="garments", stdout=report_out)
    text = report_out.getvalue()
    assert "split stored" in text and "label_prior" in text and "personal" in text and "77.6%" in text
    report = PreferenceReport.objects.get()
    assert set(report.results) == set(report.validation) == {"label_prior", "popularity", "item_cf", "user_cf",
                                                               "hybrid", "personal"}
    baseline = max(("label_prior", "popularity"), key=report.validation.get)
    learned = max(("item_cf", "user_cf", "hybrid", "personal"), key=report.validation.get)
    chosen = learned if report.validation[learned] > report.validation[baseline] else baseline
    assert report.best == chosen  # chosen on validation votes, never on the test votes
    assert report.served_reason.startswith(chosen if chosen == learned else "no learned predictor beats")
    assert set(report.families["personal"]) == {"category", "colour", "pattern", "mixed", "drifting"}
    assert report.results["label_prior"]["mean_user_auc"] > 0.6  # the clusters carry the taste: well above chance
    assert report.roc_svg.startswith("<svg") and "item_cf AUC" in report.roc_svg
    assert ServedPredictor.objects.get().name == report.best


    assert preference_model_fit(collection).name == report.best
    visitor = VoterProfile.objects.filter(kind="simulated").first().user
    assert len(selectors.feed(visitor, collection, 5)) == 5
    assert selectors.predictor_in_use(collection) == report.best

    Vote.objects.update(split="none")  # no stored split: a seeded per-user hold-out instead
    call_command("evaluate_preferences", collection="garments", no_serve=True, predictors=["item_cf", "label_prior"],
                 stdout=StringIO())
    assert PreferenceReport.objects.first().split == "holdout seed 0"
    assert ServedPredictor.objects.get().report == report


@pytest.mark.django_db
def test_pages(client, visitor, staff_user, catalogue):
    assert client.get("/for-you/").status_code == 302
    response = client.post("/accounts/signup/", {"username": "newbie", "password1": "a-long-pass-7x",
                                                 "password2": "a-long-pass-7x"})
    assert response.status_code == 302 and response.url == "/for-you/"
    page = client.get("/for-you/")
    assert page.status_code == 200 and b"p-like" in page.content
    client.logout()

    client.force_login(visitor)
    vote_upsert(visitor, catalogue[0].pk, "like")
    vote_upsert(visitor, catalogue[20].pk, "dislike")
    feed = client.get("/for-you/?collection=garments").content.decode()
    assert "Because you liked this" in feed and "label_prior" in feed  # two votes of one user: too few to learn from
    likes = client.get("/me/likes/").content.decode()
    assert catalogue[0].title in likes and catalogue[20].title not in likes
    assert 'aria-pressed="true"' in likes
    home = client.get("/").content.decode()
    # A page of 24 catalogue cards plus the home's 4 "rate these" cards, one set of buttons each,
    # and the script once.
    assert home.count('class="vote"') == 24 + 4 and home.count("votes.js") == 1
    filtered = client.get("/?collection=garments").content.decode()  # a listing: no lead, no "rate these"
    assert filtered.count('class="vote"') == 24
    assert client.get("/staff/respondents/").status_code == 302  # staff only

    client.force_login(staff_user)
    table = client.get("/staff/respondents/").content.decode()
    assert "visitor" in table
    export = client.get("/staff/respondents/?format=csv")
    assert export["Content-Type"].startswith("text/csv")
    assert export.content.decode().splitlines()[0].startswith("user,kind,votes,train_likes")

