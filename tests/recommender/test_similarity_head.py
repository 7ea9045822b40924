"""The learned similarity space end to end on real photos embedded by the real pipeline (the default backbone)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalog.models import ItemImage
from catalog.services import item_relabel
from ml import embedders
from ml.similarity import SimilarityHead
from recommender.embeddings import active_model
from recommender.models import Embedding, LearnedSpace, StyleClassifier, StyleJob
from recommender.pipeline.services import image_process
from recommender.styles import services as style_services
from recommender.styles.similarity import similarity_run
from stylesite.exceptions import InvalidInput, NotReady
from tests.photos import clothing_photos

LABELS = ("dress", "hat", "pants", "shoes")
PER_SPLIT = {"train": 6, "validation": 2, "test": 2}


@pytest.fixture
def demo_items(processed_photo_items):
    return processed_photo_items(LABELS, PER_SPLIT)


def _forget_head_models() -> None:
    """What a process started before the fit knows: no composed models."""
    for name in [n for n in embedders._REGISTRY if "+sim-" in n]:
        embedders._REGISTRY.pop(name)
    for key in [k for k in embedders._LOADED if "+sim-" in k[0]]:
        embedders._LOADED.pop(key)


@pytest.mark.django_db
def test_learned_space_is_fitted_once_backfilled_activated_and_served_to_new_images(
        collection, demo_items, make_item, settings, api_client):
    raw_model = active_model(collection)
    looked_up = demo_items[0]
    before = api_client.get(reverse("api-item-similar", args=[looked_up.pk]), {"k": 3}).json()
    assert [m["space"] for m in before] == ["raw"] * 3

    first = similarity_run(collection, activate=True, kinds=("lda",))
    space = LearnedSpace.objects.get()
    served = active_model(collection)
    assert first["retrained"] and first["activated"] and first["kind"] == "lda"
    assert served == space.model and served.dimension == 1280 + len(LABELS) - 1
    assert served.name == f"{raw_model.name}+sim-{space.fingerprint[:12]}"
    assert (Path(settings.STYLESITE_ARTIFACT_DIR) / space.artifact).is_file()
    assert Embedding.objects.filter(model=served).count() == len(demo_items)
    collection.refresh_from_db()
    assert collection.embedding_model == served.name

    # Served vectors are the head applied to the raw ones; same-label neighbours come first.
    head = SimilarityHead.load(Path(settings.STYLESITE_ARTIFACT_DIR) / space.artifact)
    raw = np.asarray(looked_up.embeddings.get(model=raw_model).vector, dtype=np.float32)
    stored = np.asarray(looked_up.embeddings.get(model=served).vector, dtype=np.float32)
    np.testing.assert_allclose(stored, head.serve(raw[None])[0], atol=2e-3)
    after = api_client.get(reverse("api-item-similar", args=[looked_up.pk]), {"k": 3}).json()
    assert [m["space"] for m in after] == ["learned"] * 3
    assert [m["item"]["label"] for m in after] == [looked_up.label] * 3

    # Nothing changed: the head is reused, no new version.
    again = similarity_run(collection, activate=True)
    assert not again["retrained"] and again["version"] == 1 and LearnedSpace.objects.count() == 1

    # A new image, in a worker that started before the fit, gets a served vector through the pipeline.
    _forget_head_models()
    newcomer = make_item(label="hat", split="train", data=clothing_photos("hat", 7, "train")[-1].read_bytes())
    assert image_process(newcomer.images.get().pk) == "ready"
    assert newcomer.embeddings.get().model == served
    response = api_client.post(reverse("api-search-image"), {
        "image": clothing_photos("hat", 1, "test")[0].open("rb"), "collection": collection.slug, "k": 2})
    assert response.status_code == 200
    assert response.json()["query"]["space"] == "learned"
    # looks_like comes from the classifier refitted on the served space at activation.
    assert StyleClassifier.objects.get().model == served
    assert response.json()["query"]["looks_like"]["label"] in LABELS
    assert {m["space"] for m in response.json()["results"]} == {"learned"}

    # The newcomer and a relabel change the inputs: the raw vector is filled in and a new head fitted.
    item_relabel(next(i for i in demo_items if i.label == "dress" and i.split == "train"), "hat")
    third = similarity_run(collection, activate=True, kinds=("lda",))
    assert third["retrained"] and third["version"] == 2 and third["activated"]
    assert newcomer.embeddings.filter(model=raw_model).exists()
    assert active_model(collection) == LearnedSpace.objects.get(version=2).model
    assert (Embedding.objects.filter(model=active_model(collection)).count()
            == ItemImage.objects.filter(collection=collection, status=ItemImage.Status.READY).count())


@pytest.mark.django_db
def test_a_head_that_blends_in_nothing_serves_the_raw_vectors(collection, demo_items, make_item, monkeypatch,
                                                              api_client):
    from ml import similarity

    raw_model = active_model(collection)
    similarity_run(collection, activate=True, kinds=("lda",))
    assert active_model(collection) != raw_model
    # New labels, and a validation split on which the learned part cannot show a gain (raw weight 1 only).
    item_relabel(next(i for i in demo_items if i.label == "dress" and i.split == "train"), "hat")
    monkeypatch.setattr(similarity, "BLEND_WEIGHTS", (1.0,))
    result = similarity_run(collection, activate=True, kinds=("lda",))
    assert result["retrained"] and result["weight"] == 1.0 and result["kept_raw"] and result["activated"]
    assert active_model(collection) == raw_model and result["model"] == str(raw_model)
    space = LearnedSpace.objects.get(version=2)
    assert not Embedding.objects.filter(model=space.model).exists()  # no copy of raw under another name
    looked_up = demo_items[0]
    assert {m["space"] for m in api_client.get(reverse("api-item-similar", args=[looked_up.pk]), {"k": 3}).json()} \
        == {"raw"}


@pytest.mark.django_db
def test_without_labels_a_collection_keeps_its_raw_vectors(collection, make_item):
    for path in clothing_photos("dress", 3):
        item = make_item(label="", split="train", data=path.read_bytes())
        assert image_process(item.images.get().pk) == "ready"
    raw_model = active_model(collection)
    with pytest.raises(NotReady, match="keeps its raw vectors"):
        similarity_run(collection, activate=True)
    assert active_model(collection) == raw_model and not LearnedSpace.objects.exists()


@pytest.mark.django_db
def test_similarity_job_validates_activate_and_the_command_reports(collection, demo_items, capsys):
    with pytest.raises(InvalidInput, match="activate must be true or false"):
        style_services.style_job_start(collection=collection, kind=StyleJob.Kind.SIMILARITY,
                                       params={"activate": "yes"})
    assert not StyleJob.objects.exists()
    call_command("train_similarity", "--collection", collection.slug, "--kind", "lda", "--activate", verbosity=0)
    out = capsys.readouterr().out
    assert "fitted head v1 (lda" in out and f"{collection.slug} now searches" in out
    assert active_model(collection) == LearnedSpace.objects.get().model


def test_similarity_job_runs_on_the_worker_with_progress(collection, demo_items, worker, api_client, staff_user):
    import time

    api_client.force_authenticate(staff_user)
    response = api_client.post(reverse("api-style-jobs"), {"collection": collection.slug, "kind": "similarity",
                                                           "activate": True}, format="json")
    assert response.status_code == 202
    job_url = reverse("api-style-job", args=[response.json()["id"]])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        body = api_client.get(job_url).json()
        if body["status"] in ("done", "failed"):
            break
        time.sleep(0.3)
    assert body["status"] == "done", body["error"]
    assert body["progress"] == 1.0 and body["result"]["activated"] and body["result"]["kind"] in ("lda", "mlp", "proxy")
    assert active_model(collection) == LearnedSpace.objects.get().model


@pytest.mark.django_db
def test_evaluate_retrieval_prints_one_table_of_spaces_and_saves_it(collection, demo_items, capsys):
    from recommender.models import RetrievalReport

    with pytest.raises(CommandError, match="no learned similarity yet"):
        call_command("evaluate_retrieval", "--collection", collection.slug, "--spaces")
    similarity_run(collection, kinds=("lda",))
    call_command("evaluate_retrieval", "--collection", collection.slug, "--spaces")
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.split()[:1] in (["raw"], ["learned"], ["blended"])]
    assert [(r[0], r[1]) for r in rows] == [(s, split) for s in ("raw", "learned", "blended")
                                            for split in ("validation", "test")]
    assert all(r[2] == "8" for r in rows)  # 2 per label and split
    assert [r[7] for r in rows[:2]] == ["1.000", "1.000"]  # raw overlaps itself
    report = RetrievalReport.objects.get()
    assert [row["model"] for row in report.rows][:2] == ["raw (validation)", "raw (test)"]
    assert {"precision@10", "map@10", "overlap@10", "accuracy", "macro_f1"} <= set(report.rows[0]["metrics"])


@pytest.mark.django_db
def test_styles_page_form_queues_a_similarity_job_that_activates(client, collection, staff_user):
    client.force_login(staff_user)
    page = client.get(reverse("recommender:style-map", args=[collection.slug])).content.decode()
    assert 'value="similarity"' in page and 'name="activate"' in page
    response = client.post(reverse("recommender:style-job-start", args=[collection.slug]),
                           {"kind": "similarity", "activate": "1"})
    assert response.status_code == 302
    job = StyleJob.objects.get()
    assert (job.kind, job.params, job.status) == ("similarity", {"activate": True}, "queued")


@pytest.mark.django_db
def test_top_block_fine_tuned_backbone_is_reembedded_activated_and_gets_its_rows_in_the_table(
        collection, demo_items, settings, monkeypatch, tmp_path, capsys):
    settings.STYLESITE_MODEL_CACHE = tmp_path
    monkeypatch.setenv("STYLESITE_MODEL_CACHE", str(tmp_path))
    similarity_run(collection, kinds=("lda",))  # a head over the ImageNet backbone first
    with pytest.raises(CommandError, match="efficientnet-lite0"):
        call_command("train_backbone", "--collection", collection.slug, "--top-blocks", "1")
    with pytest.raises(CommandError, match="--input-size needs --top-blocks"):
        call_command("train_backbone", "--collection", collection.slug, "--input-size", "288")
    call_command("train_backbone", "--collection", collection.slug, "--arch", "efficientnet-lite0",
                 "--top-blocks", "1", "--views", "1", "--epochs", "1", "--batch-size", "8", "--name", "lite0-top-test")
    assert "registered embedding model lite0-top-test" in capsys.readouterr().out
    assert (tmp_path / "backbones" / "lite0-top-test.json").is_file()
    call_command("reembed", "--collection", collection.slug, "--model", "lite0-top-test", "--activate")
    assert active_model(collection).name == "lite0-top-test"
    assert Embedding.objects.filter(model=active_model(collection)).count() == len(demo_items)

    tuned = similarity_run(collection, kinds=("lda",))  # its head is fitted over the fine-tuned vectors
    assert LearnedSpace.objects.get(version=tuned["version"]).base_model.name == "lite0-top-test"
    capsys.readouterr()
    call_command("evaluate_retrieval", "--collection", collection.slug, "--spaces")
    lines = capsys.readouterr().out.splitlines()
    rows = [line.replace("fine-tuned ", "fine-tuned_").split() for line in lines
            if line.startswith(("raw", "learned", "blended", "fine-tuned"))]
    assert [(r[0], r[1]) for r in rows] == [(f"{prefix}{s}", split) for prefix in ("", "fine-tuned_")
                                            for s in ("raw", "learned", "blended") for split in ("validation", "test")]
    assert [r[7] for r in rows[:2]] == ["1.000", "1.000"]  # the first backbone's raw lists are the reference
    assert all(0.0 <= float(r[7]) <= 1.0 for r in rows[6:])  # the fine-tuned lists against those
