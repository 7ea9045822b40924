"""The image pipeline on real models, real Postgres+pgvector and the real broker."""
from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone
from PIL import Image

from catalog.models import ItemImage
from catalog.services import ItemFields, collection_create, item_create
from recommender.models import ActiveEmbeddingModel, Embedding
from recommender.pipeline.services import image_process
from recommender.pipeline.tasks import process_image_task, sweep_stuck_images_task
from tests.photos import clothing_photos, image_bytes


def raw_image(collection, data: bytes, name: str = "x.jpg") -> ItemImage:
    """An image row whose stored file bypassed upload validation (e.g. corrupted on disk later)."""
    item = item_create(collection=collection, fields=ItemFields(title=name))
    image = ItemImage(item=item, collection=collection, sha256=f"{hash(data) & (2**64 - 1):064x}")
    image.original.save(name, ContentFile(data), save=False)
    image.save()
    return image


def jpeg(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


@pytest.mark.django_db
def test_image_processed_twice_has_one_embedding(collection, make_item):
    item = make_item()
    image = item.images.get()
    assert image_process(image.pk) == "ready"
    assert image_process(image.pk) == "skipped"
    image.refresh_from_db()
    assert image.status == "ready" and image.error == ""
    # Even forced back through the pipeline, the (image, model) key keeps one row.
    ItemImage.objects.filter(pk=image.pk).update(status="pending")
    assert image_process(image.pk) == "ready"
    vectors = Embedding.objects.filter(image=image)
    assert vectors.count() == 1
    vector = np.array(vectors.get().vector)
    assert vector.shape == (1280,) and abs(np.linalg.norm(vector) - 1) < 1e-2
    assert ActiveEmbeddingModel.objects.get(collection=collection).model == vectors.get().model


# name: (bytes, the reason the image is refused)
BAD_FILES = {
    "truncated.jpg": (lambda: image_bytes(size=(400, 300))[:600], "truncated or corrupt"),
    "bomb.png": (None, "too many pixels (limit 40 MP)"),  # built below: 20000×20000, a few KB
    "drawing.jpg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
                    "not a JPEG, PNG or WebP image"),
    "paper.jpg": (lambda: b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF", "not a JPEG, PNG or WebP image"),
}


def bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_fail_once_with_a_reason_and_write_nothing(collection, name):
    make, reason = BAD_FILES[name]
    image = raw_image(collection, bomb_png() if make is None else make(), name)
    assert image_process(image.pk) == "failed"
    image.refresh_from_db()
    assert image.status == "failed" and reason in image.error, image.error
    assert not image.mask and not Embedding.objects.filter(image=image).exists()
    # A bad image stays failed: it is not claimed again.
    assert image_process(image.pk) == "skipped"


@pytest.mark.django_db
def test_cmyk_and_16_bit_images_are_normalised_and_embedded(collection):
    cmyk = jpeg(Image.new("CMYK", (64, 64), (0, 255, 255, 0)))
    sixteen = io.BytesIO()
    Image.fromarray((np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)).save(sixteen, "PNG")
    for data, name in ((cmyk, "cmyk.jpg"), (sixteen.getvalue(), "deep.png")):
        image = raw_image(collection, data, name)
        assert image_process(image.pk) == "ready", ItemImage.objects.get(pk=image.pk).error


@pytest.mark.django_db
def test_background_removal_on_a_rotated_real_photo_keeps_orientation_and_a_sane_mask():
    cut = collection_create(name="Looks", slug="looks", remove_background=True)
    photo = Image.open(clothing_photos("dress", 1)[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise
    rotated = jpeg(photo.transpose(Image.Transpose.ROTATE_90), exif=exif)
    image = raw_image(cut, rotated, "rotated.jpg")
    assert image_process(image.pk) == "ready", ItemImage.objects.get(pk=image.pk).error
    image.refresh_from_db()
    with image.cutout.open("rb") as fh:
        cutout = Image.open(fh)
        cutout.load()
    assert cutout.size == photo.size  # upright again, not lying on its side
    assert 0.05 < image.foreground_share < 0.95
    with image.mask.open("rb") as fh:
        assert Image.open(fh).size == photo.size


@pytest.mark.django_db
def test_sweep_requeues_an_image_a_killed_worker_left_in_processing(make_item, settings):
    image = make_item().images.get()
    long_ago = timezone.now() - timedelta(seconds=settings.STYLESITE_STUCK_AFTER_SECONDS + 5)
    ItemImage.objects.filter(pk=image.pk).update(status="processing", status_changed=long_ago)
    assert image_process(image.pk) == "ready"  # a redelivered task may reclaim it too
    ItemImage.objects.filter(pk=image.pk).update(status="processing", status_changed=timezone.now())
    assert image_process(image.pk) == "skipped"  # a live claim is respected


def test_end_to_end_through_the_worker_and_the_sweep(worker, make_item, wait_for):
    def ready(image: ItemImage) -> bool:
        return ItemImage.objects.get(pk=image.pk).status == "ready"

    images = [make_item().images.get() for _ in range(2)]  # committed: on_commit queues the pipeline
    for image in images:
        wait_for(lambda image=image: ready(image), what="the pipeline")
        assert Embedding.objects.filter(image=image).count() == 1

    # A batch took both images, so the second image's own task is still queued. One more task for it
    # comes back once that one was consumed (one worker, first in first out): nothing else can claim
    # the image we are about to leave stuck.
    assert process_image_task.delay(images[1].pk).get(timeout=30) == "skipped"

    # A worker killed mid-task leaves the image in processing; the sweep re-queues it.
    stuck = images[1]
    ItemImage.objects.filter(pk=stuck.pk).update(
        status="processing", status_changed=timezone.now() - timedelta(hours=1))
    Embedding.objects.filter(image=stuck).delete()
    assert sweep_stuck_images_task.delay().get(timeout=30) == 1
    wait_for(lambda: ready(stuck), what="the pipeline")
    assert Embedding.objects.filter(image=stuck).count() == 1
    assert process_image_task.delay(stuck.pk).get(timeout=30) == "skipped"


@pytest.mark.django_db
def test_reembed_backfills_then_switches_and_searches_never_mix(collection, make_item):
    images = [make_item(label=label).images.get() for label in ("dress", "hat", "skirt")]
    for image in images:
        image_process(image.pk)
    before = ActiveEmbeddingModel.objects.get(collection=collection).model
    out = io.StringIO()
    call_command("reembed", collection="garments", model="resnet18-untrained", stdout=out, verbosity=0)
    assert ActiveEmbeddingModel.objects.get(collection=collection).model == before  # no --activate
    call_command("reembed", collection="garments", model="resnet18-untrained", activate=True, stdout=out,
                 verbosity=0)
    active = ActiveEmbeddingModel.objects.get(collection=collection).model
    collection.refresh_from_db()
    assert active.name == "resnet18-untrained" and collection.embedding_model == "resnet18-untrained"
    assert Embedding.objects.filter(model=active).count() == 3
    assert Embedding.objects.filter(model=before).count() == 3
    assert "now searches" in out.getvalue()


@pytest.mark.django_db
def test_reembed_with_missing_resnet_weights_is_a_clear_error(collection, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(CommandError, match="resnet50-0676ba61.pth"):
        call_command("reembed", collection="garments", model="resnet50", verbosity=0)
