"""Style discovery on real Postgres+pgvector: clustering jobs, map, export, coherence, curation, API."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from catalog.models import Item
from recommender.embeddings import active_model_switch
from recommender.models import (
    CoherenceRating,
    ItemStyle,
    NearDuplicate,
    StyleCluster,
    StyleClustering,
    StyleJob,
)
from recommender.styles import clustering, curation, jobs, services
from recommender.styles.selectors import mislabels
from tests.factories import blob_vectors, embed, vector_model, vector_put

@pytest.fixture
def three_styles(make_item):
    """30 items in three blobs: blob 0 mostly dresses (9 of 10), blob 1 pants, blob 2 shoes."""
    labels = ["dress"] * 9 + ["skirt"] + ["pants"] * 10 + ["shoes"] * 10
    items = [make_item(label=label) for label in labels]
    embed(items, blob_vectors([10, 10, 10]))
    return items


@pytest.mark.django_db
def test_cluster_job_writes_every_item_a_cluster_and_a_place(collection, three_styles):
    job = StyleJob.objects.create(collection=collection, kind="cluster", params=jobs.style_job_params(
        "cluster", {"map_method": "pca", "k_min": 2, "k_max": 8}))
    assert jobs.style_job_run(job.pk) == "done"
    assert jobs.style_job_run(job.pk) == "skipped"  # a finished job is never run twice
    job.refresh_from_db()
    assert job.progress == 1.0 and job.result["k"] == 3
    clustering = StyleClustering.objects.get(collection=collection)
    assert clustering.k == 3 and clustering.silhouette > 0.3
    assert sorted(map(int, clustering.silhouette_by_k)) == list(range(2, 9)) == sorted(map(int, clustering.inertia_by_k))
    ready = Item.objects.filter(collection=collection, images__status="ready")
    styles = ItemStyle.objects.filter(item__in=ready)
    assert styles.count() == ready.count() == 30
    assert all(0 <= s.x <= 1 and 0 <= s.y <= 1 for s in styles)
    names = sorted(StyleCluster.objects.filter(collection=collection).values_list("name", "size"))
    assert names == [("dress 90%", 10), ("pants 100%", 10), ("shoes 100%", 10)]


@pytest.mark.django_db
def test_reclustering_replaces_the_result_and_keeps_curator_names(collection, three_styles, make_item):
    clustering.clustering_run(collection, map_method="pca", k_max=6)
    dresses = StyleCluster.objects.get(collection=collection, name="dress 90%")
    services.cluster_rename(dresses, "Summer dresses")
    # New items join the shoes blob; the dress blob is unchanged, so its name survives.
    extra = [make_item(label="shoes") for _ in range(3)]
    embed(extra, blob_vectors([10, 10, 13])[30:])
    clustering.clustering_run(collection, map_method="pca", k_max=6)
    clusters = StyleCluster.objects.filter(collection=collection)
    assert clusters.count() == 3 and not clusters.filter(pk=dresses.pk).exists()
    renamed = clusters.get(name="Summer dresses")
    assert renamed.named_by_curator and renamed.size == 10
    assert ItemStyle.objects.filter(cluster__collection=collection).count() == 33


@pytest.mark.django_db
def test_clustering_without_vectors_fails_the_job_with_a_reason(collection, make_item):
    items = [make_item(), make_item()]
    job = StyleJob.objects.create(collection=collection, kind="cluster", params={"map_method": "pca"})
    assert jobs.style_job_run(job.pk) == "failed"
    job.refresh_from_db()
    assert "no embedding model set up yet" in job.error

    embed(items, blob_vectors([2]))
    job = StyleJob.objects.create(collection=collection, kind="cluster", params={"map_method": "pca"})
    assert jobs.style_job_run(job.pk) == "failed"
    job.refresh_from_db()
    assert "clustering needs 3 or more" in job.error


@pytest.mark.django_db
def test_export_has_one_row_per_clustered_item(collection, three_styles, tmp_path, client):
    clustering.clustering_run(collection, map_method="pca", k_max=5)
    out = tmp_path / "styles.csv"
    call_command("export_styles", "--collection", collection.slug, str(out))
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 30 == len({r["item_id"] for r in rows})
    # Every item is exported with its own label in its blob's cluster, and a place on the unit map.
    assert {(r["label"], r["cluster_name"]) for r in rows} == {
        ("dress", "dress 90%"), ("skirt", "dress 90%"), ("pants", "pants 100%"), ("shoes", "shoes 100%")}
    assert all(r["source_name"].endswith(".jpg") and 0 <= float(r["map_x"]) <= 1 for r in rows)
    response = client.get(reverse("recommender:style-export", args=[collection.slug]))
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    assert len(b"".join(response.streaming_content).decode().strip().splitlines()) == 31


@pytest.mark.django_db
def test_job_api_validates_and_is_for_staff(collection, api_client, staff_user, visitor):
    url = reverse("api-style-jobs")
    api_client.force_authenticate(visitor)
    assert api_client.post(url, {"collection": collection.slug, "kind": "cluster"}).status_code == 403
    api_client.force_authenticate(staff_user)
    bad = api_client.post(url, {"collection": collection.slug, "kind": "cluster", "map_method": "umap"})
    assert bad.status_code == 400 and "unknown map method" in bad.json()["detail"]
    bad = api_client.post(url, {"collection": collection.slug, "kind": "cluster", "k_min": 9, "k_max": 3})
    assert bad.status_code == 400
    assert api_client.post(url, {"collection": "nope", "kind": "cluster"}).status_code == 404
    assert not StyleJob.objects.exists()

    # One active job per collection and kind. (No worker here and no commit: the first stays queued.)
    first = api_client.post(url, {"collection": collection.slug, "kind": "cluster"})
    assert first.status_code == 202
    again = api_client.post(url, {"collection": collection.slug, "kind": "cluster"})
    assert again.status_code == 409 and "already queued or running" in again.json()["detail"]
    assert StyleJob.objects.count() == 1
    StyleJob.objects.filter(pk=first.json()["id"]).update(status="done")
    assert api_client.post(url, {"collection": collection.slug, "kind": "cluster"}).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_job_runs_on_the_worker_and_reports_progress(collection, three_styles, api_client, staff_user, worker,
                                                     wait_for):
    api_client.force_authenticate(staff_user)
    response = api_client.post(reverse("api-style-jobs"),
                               {"collection": collection.slug, "kind": "cluster", "map_method": "pca", "k_max": 5})
    assert response.status_code == 202
    job_url = reverse("api-style-job", args=[response.json()["id"]])

    def finished() -> dict | None:
        body = api_client.get(job_url).json()
        return body if body["status"] in ("done", "failed") else None

    body = wait_for(finished, what="the clustering job")
    assert body["status"] == "done", body
    assert body["progress"] == 1.0 and body["result"]["k"] == 3
    clusters = api_client.get(reverse("api-clusters"), {"collection": collection.slug}).json()
    assert clusters["k"] == 3 and len(clusters["clusters"]) == 3
    first = clusters["clusters"][0]
    items = api_client.get(reverse("api-cluster-items", args=[first["id"]])).json()
    assert items["count"] == first["size"]


@pytest.mark.django_db
def test_cluster_api_refuses_missing_collection(api_client):
    assert api_client.get(reverse("api-clusters")).status_code == 400
    assert api_client.get(reverse("api-clusters"), {"collection": "nope"}).status_code == 404


@pytest.mark.django_db
def test_coherence_rating_is_stored_once_per_user_and_set(collection, three_styles, api_client, visitor,
                                                          django_user_model):
    import random

    from django.contrib.auth.models import Group

    clustering.clustering_run(collection, map_method="pca", k_max=5)
    visitor.groups.add(Group.objects.create(name="students"))
    shown = services.coherence_set_next(collection, visitor, random.Random(1))
    # A control set takes one item from each of 4 or more clusters; with 3 clusters every set is one cluster's.
    assert not shown.is_control and shown.cluster_id is not None
    assert 4 <= shown.items.count() <= 6
    assert {i.style.cluster_id for i in shown.items.all()} == {shown.cluster_id}
    url = reverse("api-coherence-rate")
    api_client.force_authenticate(visitor)
    assert api_client.post(url, {"set": shown.pk, "score": 9}).status_code == 400
    assert api_client.post(url, {"set": shown.pk, "score": "abc"}).status_code == 400
    assert api_client.post(url, {"set": shown.pk, "score": 4}).status_code == 201
    second = api_client.post(url, {"set": shown.pk, "score": 2})
    assert second.status_code == 409 and "already rated" in second.json()["detail"]
    rating = CoherenceRating.objects.get()
    assert (rating.score, rating.group) == (4, "students")
    # The next set offered is one this user has not rated.
    assert all(services.coherence_set_next(collection, visitor, random.Random(s)).pk != shown.pk
               for s in range(5))
    # The rating counts for the set's cluster only, under the rater's group.
    body = api_client.get(reverse("api-cluster-coherence", args=[shown.cluster_id])).json()
    assert body["cluster"] == {"ratings": 1, "mean": 4.0, "by_group": {"students": {"ratings": 1, "mean": 4.0}}}
    assert body["control"] == {"ratings": 0, "mean": None, "by_group": {}}
    other = StyleCluster.objects.filter(collection=collection).exclude(pk=shown.cluster_id).first()
    assert api_client.get(reverse("api-cluster-coherence", args=[other.pk])).json()["cluster"]["ratings"] == 0


@pytest.mark.django_db
def test_curation_finds_a_planted_mislabel_and_a_planted_duplicate(collection, make_item, admin_client):
    labels = ["dress"] * 12 + ["pants"] * 12
    splits = (["train"] * 8 + ["validation"] * 2 + ["test"] * 2) * 2
    items = [make_item(label=label, split=split) for label, split in zip(labels, splits)]
    planted = make_item(label="pants", split="none")  # looks like a dress
    twin = make_item(label="dress", split="none")  # a near copy of items[0]
    vectors = blob_vectors([13, 12], spread=0.3)  # the 13th of the dress blob goes to the planted item
    near = vectors[0] + 0.002 * np.random.default_rng(7).normal(size=len(vectors[0])).astype(np.float32)
    embed([*items, planted, twin], [*vectors[:12], *vectors[13:], vectors[12], near / np.linalg.norm(near)])
    result = curation.classifier_run(collection)
    assert result["retrained"] and result["test_accuracy"] == 1.0
    flagged = list(mislabels(collection))
    assert flagged and flagged[0].item == planted and flagged[0].label == "dress"
    pair = NearDuplicate.objects.get(collection=collection)
    assert {pair.first_id, pair.second_id} == {items[0].pk, twin.pk} and pair.similarity >= 0.97

    client = admin_client
    page = client.get(reverse("admin:recommender_mislabel_changelist"))
    assert page.status_code == 200 and planted.title.encode() in page.content
    client.post(reverse("admin:recommender_mislabel_relabel", args=[flagged[0].pk]))
    planted.refresh_from_db()
    assert planted.label == "dress"
    assert client.get(reverse("admin:recommender_nearduplicate_changelist")).status_code == 200
    client.post(reverse("admin:recommender_nearduplicate_resolve", args=[pair.pk, "merge"]))
    keep = Item.objects.get(pk=pair.first_id)
    assert not Item.objects.filter(pk=pair.second_id).exists() and keep.images.count() == 2


@pytest.mark.django_db
def test_duplicate_keep_closes_the_pair_once(collection, make_item):
    a, b = make_item(), make_item()
    pair = NearDuplicate.objects.create(collection=collection, first=a, second=b, similarity=0.99)
    assert curation.duplicate_resolve(pair, "keep").resolution == "kept"
    from stylesite.exceptions import Conflict, InvalidInput

    with pytest.raises(Conflict):
        curation.duplicate_resolve(pair, "keep")
    other = NearDuplicate.objects.create(collection=collection, first=b, second=a, similarity=0.99)
    with pytest.raises(InvalidInput):
        curation.duplicate_resolve(other, "destroy")
    assert Item.objects.filter(pk__in=[a.pk, b.pk]).count() == 2


@pytest.mark.django_db
def test_pages_render(collection, three_styles, client, visitor, staff_user):
    clustering.clustering_run(collection, map_method="pca", k_max=5)
    curation.classifier_run(collection)
    cluster = StyleCluster.objects.filter(collection=collection).first()
    assert client.get(reverse("recommender:styles")).status_code == 200
    page = client.get(reverse("recommender:style-map", args=[collection.slug]))
    assert page.status_code == 200 and b"style-map" in page.content and b"chart.umd.min.js" in page.content
    page = client.get(reverse("recommender:style-cluster", args=[cluster.pk]))
    assert page.status_code == 200 and cluster.name.encode() in page.content
    assert client.get(reverse("recommender:style-classifier", args=[collection.slug])).status_code == 200
    assert client.get(reverse("recommender:style-rate", args=[collection.slug])).status_code == 302  # login first
    client.force_login(visitor)
    page = client.get(reverse("recommender:style-rate", args=[collection.slug]))
    assert page.status_code == 200 and b"Do these feel alike?" in page.content
    shown = page.context["set"]
    rated = client.post(reverse("recommender:style-rate", args=[collection.slug]), {"set": shown.pk, "score": "4"},
                        follow=True)
    assert rated.status_code == 200 and CoherenceRating.objects.filter(set=shown, user=visitor, score=4).exists()
    bad = client.post(reverse("recommender:style-rate", args=[collection.slug]), {"set": "abc", "score": "4"},
                      follow=True)
    assert bad.status_code == 200 and b"missing its set" in bad.content
    points = client.get(reverse("api-style-map"), {"collection": collection.slug}).json()["points"]
    assert len(points) == 30 and {"x", "y", "cluster", "label", "thumb", "url", "vote"} <= set(points[0])
    item = three_styles[0]
    detail = client.get(item.get_absolute_url())
    assert b"Looks like:" in detail.content
    # Staff start jobs from the page; a bad parameter is a message, not a 500.
    client.force_login(staff_user)
    response = client.post(reverse("recommender:style-job-start", args=[collection.slug]),
                           {"kind": "cluster", "k_min": "x"}, follow=True)
    assert response.status_code == 200 and b"whole numbers" in response.content


@pytest.mark.django_db
def test_a_second_job_waits_for_the_first_unless_the_first_was_lost(collection):
    from datetime import timedelta

    from django.utils import timezone

    from stylesite.exceptions import Conflict

    first = StyleJob.objects.create(collection=collection, kind="cluster", status="running", started=timezone.now())
    with pytest.raises(Conflict, match="already queued or running"):
        services.style_job_start(collection=collection, kind="cluster")
    assert services.style_job_start(collection=collection, kind="classify").status == "queued"  # other kinds may run
    StyleJob.objects.filter(pk=first.pk).update(started=timezone.now() - timedelta(hours=3))
    job = services.style_job_start(collection=collection, kind="cluster", params={"map_method": "pca"})
    first.refresh_from_db()
    assert first.status == "failed" and "lost" in first.error
    assert job.status == "queued" and job.params == {"map_method": "pca", "k_min": 2, "k_max": 30}


@pytest.mark.django_db
def test_admin_shows_clusters_coherence_jobs_and_classifier_reports(collection, three_styles, admin_client, visitor):
    from recommender.models import CoherenceSet, StyleClassifier

    for i, item in enumerate(three_styles):
        Item.objects.filter(pk=item.pk).update(split={3: "validation", 4: "test"}.get(i % 5, "train"))
    clustering.clustering_run(collection, map_method="pca", k_max=5)
    curation.classifier_run(collection)
    cluster = StyleCluster.objects.filter(collection=collection).first()
    rated = CoherenceSet.objects.create(collection=collection, cluster=cluster)
    services.coherence_rate(user=visitor, set_id=rated.pk, score="5")
    page = admin_client.get(reverse("admin:recommender_stylecluster_change", args=[cluster.pk]))
    assert page.status_code == 200 and b"<strong>5.0</strong> from 1 rating(s)" in page.content
    classifier = StyleClassifier.objects.get(collection=collection)
    page = admin_client.get(reverse("admin:recommender_styleclassifier_change", args=[classifier.pk]))
    assert page.status_code == 200 and b"macro F1" in page.content and b"<svg" in page.content
    for name in ("stylecluster", "styleclustering", "stylejob", "coherencerating", "styleclassifier",
                 "mislabel", "nearduplicate"):
        assert admin_client.get(reverse(f"admin:recommender_{name}_changelist")).status_code == 200, name
    # Renaming in the changelist marks the name as the curator's.
    response = admin_client.post(reverse("admin:recommender_stylecluster_change", args=[cluster.pk]),
                                 {"name": "Evening wear"})
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert cluster.name == "Evening wear" and cluster.named_by_curator


@pytest.mark.django_db
def test_a_switch_of_space_rebuilds_the_map_with_the_curators_parameters(collection, three_styles,
                                                                         django_capture_on_commit_callbacks):
    params = jobs.style_job_params("cluster", {"map_method": "pca", "k_max": 5})
    clustering.clustering_run(collection, **params)
    StyleJob.objects.create(collection=collection, kind="cluster", params=params, status="done")
    old_model = StyleClustering.objects.get(collection=collection).model
    new_model = vector_model("switch-test", 8)
    rng = np.random.default_rng(0)
    for item, vector in zip(three_styles, np.repeat(np.eye(8)[:3], 10, axis=0) + 0.05 * rng.normal(size=(30, 8))):
        vector_put(new_model, item.images.get(), vector)

    with django_capture_on_commit_callbacks(execute=True):
        active_model_switch(collection, new_model)

    # One cluster job, with the curator's parameters; no classifier job (there was no classifier).
    job = StyleJob.objects.get(status="queued")
    assert (job.kind, job.params) == ("cluster", params)
    assert jobs.style_job_run(job.pk) == "done"
    rebuilt = StyleClustering.objects.get(collection=collection)
    assert rebuilt.model == new_model != old_model and rebuilt.k == 3
    # Switching to the model already active announces nothing, so nothing is queued again.
    with django_capture_on_commit_callbacks(execute=True):
        active_model_switch(collection, new_model)
    assert not StyleJob.objects.filter(status="queued").exists()
