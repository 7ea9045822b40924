"""Fast ingest (issue 15): batched pipeline tasks, redelivery after a killed worker, styles after ingest."""
from __future__ import annotations

import pytest

from catalog.models import ItemImage
from catalog.services import image_claim, images_claim_more
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
