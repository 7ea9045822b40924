"""Fast ingest (issue 15): batched pipeline tasks, redelivery after a killed worker, styles after ingest."""
from __future__ import annotations

import pytest

from catalog.lifecycle import image_claim, images_claim_more, images_claims_renew
from catalog.models import ItemImage
from recommender.models import Embedding, StyleJob
from recommender.pipeline.services import image_process
from recommender.pipeline.tasks import process_image_task


def statuses(images) -> list[str]:
    return [ItemImage.objects.get(pk=image.pk).status for image in images]


@pytest.mark.django_db
def test_a_redelivered_task_resumes_its_own_claim_and_another_task_skips(make_item):
    first, second = (make_item().images.get() for _ in range(2))
    assert image_claim(first.pk, "task-A") is not None
    assert [image.pk for image in images_claim_more("task-A", 5)] == [first.pk, second.pk]
    # The worker running task-A dies here: both images stay "processing", claimed by task-A.
    assert statuses([first, second]) == ["processing", "processing"]

    assert process_image_task.apply(args=[first.pk], task_id="task-B").get() == "skipped"
    assert statuses([first, second]) == ["processing", "processing"]

    # The broker redelivers task-A (the same task id): it resumes both claims at once.
    assert process_image_task.apply(args=[first.pk], task_id="task-A").get() == "ready"
    assert statuses([first, second]) == ["ready", "ready"]
    assert Embedding.objects.filter(image__in=[first, second]).count() == 2
    assert ItemImage.objects.filter(pk__in=[first.pk, second.pk], claimed_by="").count() == 2


@pytest.mark.django_db
def test_a_claim_without_a_token_is_never_resumed(make_item):
    image = make_item().images.get()
    assert image_claim(image.pk) is not None
    assert image_process(image.pk) == "skipped"
    assert image_process(image.pk, "task-A") == "skipped"


@pytest.mark.django_db
def test_one_task_embeds_a_batch_and_the_others_skip(make_item, settings):
    settings.STYLESITE_PIPELINE_BATCH = 4
    images = [make_item().images.get() for _ in range(6)]
    assert process_image_task.apply(args=[images[2].pk]).get() == "ready"
    # Its own image plus the three oldest pending ones.
    assert statuses(images) == ["ready", "ready", "ready", "ready", "pending", "pending"]
    assert process_image_task.apply(args=[images[0].pk]).get() == "skipped"
    assert statuses(images) == ["ready"] * 6
    assert Embedding.objects.filter(image__in=images).count() == 6


@pytest.mark.django_db
def test_a_bad_image_fails_alone_in_its_batch(collection, make_item):
    good = make_item().images.get()
    bad = make_item().images.get()
    with open(bad.original.path, "wb") as handle:  # the file went bad on disk after its upload
        handle.write(b"%PDF-1.4 not an image")
    assert process_image_task.apply(args=[good.pk]).get() == "ready"
    bad.refresh_from_db()
    assert statuses([good, bad]) == ["ready", "failed"] and bad.error
    assert not Embedding.objects.filter(image=bad).exists()


@pytest.mark.django_db
def test_styles_start_once_when_the_first_ingest_drains(collection, make_item, settings):
    settings.STYLESITE_STYLES_AUTO_MIN_IMAGES = 3
    images = [make_item(label=label).images.get() for label in ("dress", "hat", "skirt", "dress")]
    settings.STYLESITE_PIPELINE_BATCH = 1
    for image in images[:2]:
        process_image_task.apply(args=[image.pk]).get()
    assert not StyleJob.objects.exists()  # two ready, two pending: not drained
    settings.STYLESITE_PIPELINE_BATCH = 32
    process_image_task.apply(args=[images[2].pk]).get()
    jobs = StyleJob.objects.filter(collection=collection)
    assert sorted(jobs.values_list("kind", flat=True)) == ["classify", "cluster"]
    # Later images (a second import) do not start them again.
    image = make_item().images.get()
    process_image_task.apply(args=[image.pk]).get()
    assert jobs.count() == 2


@pytest.mark.django_db
def test_a_small_collection_gets_no_automatic_style_jobs(make_item, settings):
    settings.STYLESITE_STYLES_AUTO_MIN_IMAGES = 3
    images = [make_item().images.get() for _ in range(2)]
    process_image_task.apply(args=[images[0].pk]).get()
    assert statuses(images) == ["ready", "ready"]
    assert not StyleJob.objects.exists()


@pytest.fixture
def cut_collection(db):
    from catalog.services import collection_create

    return collection_create(name="Cut", slug="cut", remove_background=True)


@pytest.fixture
def refine_queue(settings):
    """This run's pass-2 queue on the real broker, emptied before and after."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(settings.STYLESITE_REFINE_QUEUE)
    yield lambda: client.llen(settings.STYLESITE_REFINE_QUEUE)
    client.delete(settings.STYLESITE_REFINE_QUEUE)


def photo_item(make_item, collection, label: str = "dress"):
    from tests.photos import clothing_photos

    return make_item(label=label, data=clothing_photos(label, 1, "validation")[0].read_bytes(), target=collection)


@pytest.mark.django_db
def test_two_passes_embed_uncut_at_once_then_replace_the_vector_with_the_cut_out(
        make_item, cut_collection, refine_queue):
    from recommender.pipeline.tasks import refine_image_task

    image = photo_item(make_item, cut_collection).images.get()
    assert process_image_task.apply(args=[image.pk]).get() == "ready"
    image.refresh_from_db()
    assert (image.status, image.refined, bool(image.mask)) == ("ready", False, False)
    uncut = list(Embedding.objects.get(image=image).vector)
    assert refine_queue() == 1  # pass 2 queued on its own queue

    assert refine_image_task.apply(args=[image.pk], task_id="pass-2-A").get() == "refined"
    image.refresh_from_db()
    assert (image.status, image.refined, bool(image.mask), image.claimed_by) == ("ready", True, True, "")
    assert 0.05 < image.foreground_share < 0.95
    vectors = Embedding.objects.filter(image=image)
    assert vectors.count() == 1 and list(vectors.get().vector) != uncut
    assert refine_image_task.apply(args=[image.pk]).get() == "skipped"


@pytest.mark.django_db
def test_a_cut_out_another_background_model_made_is_cut_again_and_stays_searchable_meanwhile(
        make_item, cut_collection, refine_queue, settings):
    import redis

    from recommender.pipeline.steps import current_cutter
    from recommender.pipeline.tasks import refine_image_task, sweep_stuck_images_task

    image = photo_item(make_item, cut_collection).images.get()
    kept = make_item().images.get()  # a collection that keeps backgrounds: no mask, never cut again
    process_image_task.apply(args=[image.pk]).get()
    process_image_task.apply(args=[kept.pk]).get()
    refine_image_task.apply(args=[image.pk], task_id="pass-2-A").get()
    image.refresh_from_db()
    kept.refresh_from_db()
    assert (image.refined, image.cutter) == (True, current_cutter()) and "isnet" in image.cutter
    assert (kept.refined, kept.cutter) == (True, "")
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.STYLESITE_REFINE_QUEUE)

    sweep_stuck_images_task.apply().get()
    assert refine_queue() == 0  # made by today's cutter: nothing to do

    ItemImage.objects.filter(pk=image.pk).update(cutter="isnet-general-use@1024/int8-r1-q1")  # the 8-bit copy's
    sweep_stuck_images_task.apply().get()
    image.refresh_from_db()
    kept.refresh_from_db()
    assert refine_queue() == 1 and not image.refined and kept.refined
    assert Embedding.objects.filter(image=image).count() == 1  # still searchable until the new cut-out lands
    assert refine_image_task.apply(args=[image.pk], task_id="pass-2-B").get() == "refined"
    image.refresh_from_db()
    assert (image.refined, image.cutter, image.claimed_by) == (True, current_cutter(), "")


@pytest.mark.django_db
def test_a_collection_that_keeps_backgrounds_has_one_pass(make_item, refine_queue):
    image = make_item().images.get()
    assert process_image_task.apply(args=[image.pk]).get() == "ready"
    image.refresh_from_db()
    assert image.refined and refine_queue() == 0


@pytest.mark.django_db
def test_a_failed_refinement_leaves_the_image_searchable_with_its_reason(make_item, cut_collection, refine_queue):
    from recommender.pipeline.tasks import refine_image_task

    image = photo_item(make_item, cut_collection).images.get()
    process_image_task.apply(args=[image.pk]).get()
    with open(image.original.path, "wb") as handle:
        handle.write(b"%PDF-1.4 not an image")
    assert refine_image_task.apply(args=[image.pk]).get() == "failed"
    image.refresh_from_db()
    assert (image.status, image.refined, image.claimed_by) == ("ready", False, "") and image.error
    assert Embedding.objects.filter(image=image).count() == 1


@pytest.mark.django_db
def test_an_unexpected_error_fails_only_the_images_not_yet_stored(make_item, monkeypatch):
    from recommender.pipeline import services

    first, second = (make_item().images.get() for _ in range(2))
    store = services._embed_and_store
    calls = []

    def store_then_break(batch, refine):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return store(batch, refine)

    monkeypatch.setattr(services, "EMBED_BATCH", 1)
    monkeypatch.setattr(services, "_embed_and_store", store_then_break)
    assert process_image_task.apply(args=[first.pk]).get() == "ready"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("ready", "failed")
    assert second.error == "internal error: RuntimeError: disk full"


def test_an_import_queues_one_task_per_batch_and_the_worker_makes_every_image_ready(
        worker, collection, settings, tmp_path, wait_for):
    from celery.signals import before_task_publish

    from catalog.importers import ImportRecord
    from catalog.services import records_import
    from tests.photos import image_bytes

    settings.STYLESITE_PIPELINE_BATCH = 2
    published: list[str] = []

    def count(sender=None, **_kwargs):
        published.append(sender)

    records = []
    for n in range(5):
        (tmp_path / f"{n}.jpg").write_bytes(image_bytes(seed=n + 1))
        records.append(ImportRecord(tmp_path / f"{n}.jpg", label="dress", split="train"))
    before_task_publish.connect(count)
    try:
        records_import(collection, records, lambda *_row: None)
    finally:
        before_task_publish.disconnect(count)
    # Five images in one chunk: tasks for the 1st, 3rd and 5th, each claiming its own and one more.
    assert published.count(process_image_task.name) == 3
    images = ItemImage.objects.filter(collection=collection)
    wait_for(lambda: images.filter(status="ready").count() == 5, what="the pipeline")
    assert Embedding.objects.filter(image__in=images).count() == 5


@pytest.mark.django_db
def test_a_refine_task_cuts_out_a_batch_and_the_tasks_together_cover_every_image(
        make_item, cut_collection, refine_queue, settings):
    from recommender.pipeline.tasks import refine_image_task

    settings.STYLESITE_REFINE_BATCH = 2
    images = [photo_item(make_item, cut_collection, label).images.get() for label in ("dress", "hat", "skirt")]
    process_image_task.apply(args=[images[0].pk]).get()

    def refined() -> list[bool]:
        return [ItemImage.objects.get(pk=image.pk).refined for image in images]

    assert refined() == [False, False, False]
    assert refine_queue() == 2  # one pass-2 task per batch of two: for the first and the third image
    # Its own image and the oldest unrefined one, cut out together.
    assert refine_image_task.apply(args=[images[1].pk], task_id="pass-2-A").get() == "refined"
    assert refined() == [True, True, False]
    # The first image's own task finds it done and refines what is left instead.
    assert refine_image_task.apply(args=[images[0].pk], task_id="pass-2-B").get() == "skipped"
    assert refined() == [True, True, True]
    assert Embedding.objects.filter(image__in=images).count() == 3
    assert ItemImage.objects.filter(pk__in=[image.pk for image in images], claimed_by="").count() == 3


@pytest.mark.django_db
def test_a_redelivered_refine_task_resumes_its_batch_and_another_task_leaves_it(
        make_item, cut_collection, refine_queue, settings):
    from catalog.lifecycle import images_claim_refine_more
    from recommender.pipeline.tasks import refine_image_task

    images = [photo_item(make_item, cut_collection, label).images.get() for label in ("dress", "hat")]
    process_image_task.apply(args=[images[0].pk]).get()
    assert [image.pk for image in images_claim_refine_more("pass-2-A", 5)] == [images[0].pk, images[1].pk]
    # The worker running pass-2-A dies here; another task leaves its claims alone.
    assert refine_image_task.apply(args=[images[1].pk], task_id="pass-2-B").get() == "skipped"
    assert not ItemImage.objects.filter(pk__in=[image.pk for image in images], refined=True).exists()
    # The broker redelivers pass-2-A: it resumes both at once.
    assert refine_image_task.apply(args=[images[0].pk], task_id="pass-2-A").get() == "refined"
    assert ItemImage.objects.filter(pk__in=[image.pk for image in images], refined=True, claimed_by="").count() == 2


def _age_claims(images, seconds: float) -> None:
    from datetime import timedelta

    from django.utils import timezone

    ItemImage.objects.filter(pk__in=[image.pk for image in images]).update(
        status_changed=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db
def test_claims_whose_task_stopped_renewing_them_are_taken_over_after_the_lease(make_item, settings):
    first, second = (make_item().images.get() for _ in range(2))
    assert image_claim(first.pk, "task-A") is not None
    assert len(images_claim_more("task-A", 5)) == 2
    # task-A's whole worker is killed: its message stays invisible for the broker's visibility timeout
    # (hours), and its claims are no longer renewed.
    _age_claims([first, second], settings.STYLESITE_CLAIM_LEASE_SECONDS + 1)

    assert process_image_task.apply(args=[first.pk], task_id="task-B").get() == "ready"
    assert statuses([first, second]) == ["ready", "ready"]
    assert Embedding.objects.filter(image__in=[first, second]).count() == 2


@pytest.mark.django_db
def test_a_task_renews_its_claims_so_no_other_task_takes_them(make_item, settings):
    first, second = (make_item().images.get() for _ in range(2))
    assert len(images_claim_more("task-A", 5)) == 2
    _age_claims([first, second], settings.STYLESITE_CLAIM_LEASE_SECONDS + 1)  # a slow batch, still alive
    images_claims_renew({"task-A"})
    assert images_claim_more("task-B", 5) == []
    assert image_claim(first.pk, "task-B") is None
    assert ItemImage.objects.filter(pk__in=[first.pk, second.pk], claimed_by="task-A").count() == 2
