"""The image pipeline: decode → background removal → cut-out check → subject crop → embedding.

Called by ``tasks.process_image_task`` (one image) and the ``reembed`` command (many images,
batched). ``ml`` does the image work; this module reads and writes rows and files.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image

from catalog.models import ItemImage

from .models import Embedding, EmbeddingModel
from .services import active_model, embedding_model_ensure, embeddings_upsert

log = logging.getLogger(__name__)

# Background removal and cropping work on a copy this large (the ISNet input is 1024 px).
WORKING_SIZE = 1024


class PermanentFailure(Exception):
    """The image itself (or the configuration) is at fault: retrying will not help."""


@dataclass
class Prepared:
    crop: Image.Image
    mask: np.ndarray | None
    share: float | None
    suspect: bool


def claim(image_id: int) -> ItemImage | None:
    """Move a pending (or long-stuck) image to processing; None when someone else has it or it is done."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.STYLESITE_STUCK_AFTER_SECONDS)
    claimed = ItemImage.objects.filter(pk=image_id).filter(
        Q(status=ItemImage.Status.PENDING) | Q(status=ItemImage.Status.PROCESSING, status_changed__lt=stale)
    ).update(status=ItemImage.Status.PROCESSING, status_changed=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    return ItemImage.objects.select_related("item", "collection").get(pk=image_id)


def release(image_id: int) -> None:
    """Hand a claimed image back to the queue after a transient error (the retry claims it again)."""
    ItemImage.objects.filter(pk=image_id, status=ItemImage.Status.PROCESSING).update(
        status=ItemImage.Status.PENDING, status_changed=timezone.now()
    )


def fail(image_id: int, reason: str) -> None:
    ItemImage.objects.filter(pk=image_id).update(
        status=ItemImage.Status.FAILED, error=reason[:2000], status_changed=timezone.now()
    )


def decode(image: ItemImage, size: int = WORKING_SIZE) -> Image.Image:
    """The image upright and reduced to fit ``size`` (JPEGs decode directly at a smaller scale)."""
    from ml.images import ImageRejected, decode_image

    with image.original.open("rb") as handle:
        data = handle.read()
    try:
        return decode_image(data, max_pixels=settings.STYLESITE_MAX_PIXELS, draft_size=size)
    except ImageRejected as exc:
        raise PermanentFailure(str(exc)) from exc


def cut_out(rgb: Image.Image, collection_id: int, image_id: int | None = None) -> tuple[np.ndarray, float, bool]:
    """The background mask, the subject's share of the image, and whether the mask looks wrong
    next to the collection's other masks. Raises ``BackgroundModelMissing``."""
    from ml.background import flag_suspect_masks, foreground_share, remove_background

    mask = remove_background(rgb, model=settings.STYLESITE_BACKGROUND_MODEL)
    share = foreground_share(mask)
    others = list(
        ItemImage.objects.filter(collection_id=collection_id, foreground_share__isnull=False)
        .exclude(pk=image_id).values_list("foreground_share", flat=True)
    )
    return mask, share, flag_suspect_masks(others + [share])[-1]


def prepare(image: ItemImage, decoded: Image.Image, input_size: int) -> Prepared:
    """Cut out (when the collection wants it), check the mask, crop to the subject, pad white."""
    from ml.background import BackgroundModelMissing

    rgb = decoded.convert("RGB")
    if not image.collection.remove_background:
        return Prepared(crop_for(rgb, None, input_size), None, None, False)
    try:
        mask, share, suspect = cut_out(rgb, image.collection_id, image.pk)
    except BackgroundModelMissing as exc:
        raise PermanentFailure(str(exc)) from exc
    # A suspect cut-out would embed the wrong thing: fall back to the uncut image.
    return Prepared(crop_for(rgb, None if suspect else mask, input_size), mask, share, suspect)


def crop_for(rgb: Image.Image, mask: np.ndarray | None, input_size: int) -> Image.Image:
    """The embedder's input: the cut-out on white cropped to the mask, or the whole image padded."""
    from ml.images import composite_on_white, subject_crop

    if mask is None:
        return subject_crop(rgb, None, size=input_size)
    return subject_crop(composite_on_white(rgb, mask), mask, size=input_size)


def stored_crop(image: ItemImage, input_size: int) -> Image.Image:
    """Rebuild the embedder's input from the original and the stored mask (no background model run)."""
    rgb = decode(image).convert("RGB")
    mask = None
    if image.mask and not image.suspect:
        with image.mask.open("rb") as handle:
            mask_img = Image.open(handle).convert("L")
            if mask_img.size != rgb.size:
                mask_img = mask_img.resize(rgb.size, Image.Resampling.BILINEAR)
            mask = np.asarray(mask_img, dtype=np.float32) / 255.0
    elif image.collection.remove_background and not image.suspect:
        return prepare(image, rgb, input_size).crop
    return crop_for(rgb, mask, input_size)


def _save_cutout_files(image: ItemImage, decoded: Image.Image, prepared: Prepared) -> None:
    from ml.images import composite_on_white, encode_png_fast, encode_webp

    if prepared.mask is None:
        return
    mask_img = Image.fromarray((prepared.mask * 255).astype(np.uint8), mode="L")
    stem = f"{image.pk}"
    for field in (image.mask, image.cutout):
        if field:
            field.delete(save=False)
    image.mask.save(f"{stem}.png", ContentFile(encode_png_fast(mask_img)), save=False)
    image.cutout.save(f"{stem}.webp", ContentFile(encode_webp(composite_on_white(decoded.convert("RGB"),
                                                                                  prepared.mask))), save=False)


def image_process(image_id: int) -> str:
    """Run the whole pipeline for one image; returns what happened ("ready", "failed", "skipped")."""
    from ml.embedders import get_embedder

    image = claim(image_id)
    if image is None:
        return "skipped"
    try:
        model = current_model_for(image)
        embedder = get_embedder(model.name)
        # Without background removal the embedder's input size is all the decode needs.
        size = WORKING_SIZE if image.collection.remove_background else embedder.spec.input_size
        decoded = decode(image, size)
        prepared = prepare(image, decoded, embedder.spec.input_size)
        vector = embedder.embed([prepared.crop])[0]
    except PermanentFailure as exc:
        fail(image_id, str(exc))
        return "failed"
    _save_cutout_files(image, decoded, prepared)
    with transaction.atomic():
        embeddings_upsert([Embedding(image=image, item_id=image.item_id, model=model, vector=vector.tolist())])
        ItemImage.objects.filter(pk=image_id).update(
            status=ItemImage.Status.READY, error="", status_changed=timezone.now(),
            mask=image.mask.name, cutout=image.cutout.name,
            foreground_share=prepared.share, suspect=prepared.suspect,
        )
    return "ready"


def current_model_for(image: ItemImage) -> EmbeddingModel:
    """The model new vectors go to: the registry's current version of the collection's active model.

    When code shipped new weights for the active model, new images get the new version and the
    collection keeps searching the old one until ``reembed --activate`` backfills and switches.
    """
    from ml.embedders import WeightsMissing

    active = active_model(image.collection)
    try:
        current = embedding_model_ensure(active.name)
    except WeightsMissing as exc:
        raise PermanentFailure(str(exc)) from exc
    if current.pk != active.pk:
        log.warning("collection %s searches %s but the registry now has %s; run reembed --activate",
                    image.collection.slug, active, current)
    return current


def stuck_images(now=None):
    """Images that waited in pending/processing longer than the bound."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.STYLESITE_STUCK_AFTER_SECONDS)
    return ItemImage.objects.filter(
        status__in=[ItemImage.Status.PENDING, ItemImage.Status.PROCESSING], status_changed__lt=stale
    )
