"""The image pipeline for catalogue images: claim, steps, vector, ready — or a failure with a reason.

Called by ``tasks.process_image_task`` (pass 1: its own image and a batch of pending ones) and
``tasks.refine_image_task`` (pass 2). ItemImage's state changes through ``catalog.services``;
vectors through the embeddings area.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from PIL import Image

from catalog.lifecycle import (
    image_claim,
    image_claim_refine,
    images_claim_refine_more,
    image_fail,
    image_mark_pending,
    image_mark_ready,
    image_refine_fail,
    images_claims_renew,
)
from catalog.models import Collection, ItemImage
from catalog.services import files_delete_on_commit

from ..embeddings import (
    collection_embedding_ensure,
    embedding_model_ensure,
    embeddings_upsert,
)
from ..models import Embedding, EmbeddingModel
from .signals import ingest_drained
from .steps import (
    WORKING_SIZE,
    PermanentFailure,
    Prepared,
    collection_shares,
    crop_for,
    current_cutter,
    cutout_files_save,
    decode,
    mask_of,
    mask_suspect,
)

log = logging.getLogger(__name__)


# Images embedded in one forward pass; decoding the next ones overlaps it.
EMBED_BATCH = 16


def image_process(image_id: int, token: str = "") -> str:
    """Run the whole pipeline for one image, both passes at once; returns what happened ("ready",
    "failed", "skipped"). ``token`` is the calling task's id: a redelivered task resumes its claim.
    """
    image = image_claim(image_id, token)
    if image is None:
        return "skipped"
    return images_process([image], cut_out=True)[image_id]


def image_refine(image_id: int, token: str = "") -> str:
    """Pass 2 for ``image_id`` and, with a task's ``token``, up to ``STYLESITE_REFINE_BATCH`` - 1
    other unrefined images (cut out two at a time; their own tasks then skip): cut out, check the
    mask, embed again and replace the vector in one transaction with the "refined" state.

    Returns ``image_id``'s outcome: "refined", "failed" (the image stays searchable on its uncut
    vector, with the reason) or "skipped".
    """
    own = image_claim_refine(image_id, token)
    more = images_claim_refine_more(token, settings.STYLESITE_REFINE_BATCH - (1 if own else 0), exclude=image_id)
    claimed = ([own] if own else []) + more
    if not claimed:
        return "skipped"
    return images_process(claimed, cut_out=True, refine=True).get(image_id, "skipped")


def images_process(images: list[ItemImage], *, cut_out: bool, refine: bool = False) -> dict[int, str]:
    """The pipeline for claimed images: decode (and, with ``cut_out``, remove the background where
    the collection wants it) in threads while the previous ones are embedded in batches, then store
    each batch's vectors and states in one transaction.

    Pass 1 is ``cut_out=False``: the uncut photo, embedded at once; images of collections that
    remove backgrounds stay unrefined for pass 2 (``refine=True``). The threads touch no database
    (their connections would not see this one's transaction); model lookups and mask checks run
    here. Returns each image's outcome; an image at fault fails alone.
    """
    fail = image_refine_fail if refine else image_fail
    from concurrent.futures import ThreadPoolExecutor

    from ml.embedders import get_embedder

    outcomes: dict[int, str] = {}
    models: dict[int, EmbeddingModel] = {}
    shares: dict[int, list[float]] = {}
    work = []
    for image in images:
        try:
            if image.collection_id not in models:
                models[image.collection_id] = current_model_for(image)
                shares[image.collection_id] = collection_shares(image.collection_id)
        except PermanentFailure as exc:
            fail(image.pk, str(exc))
            outcomes[image.pk] = "failed"
            continue
        work.append((image, models[image.collection_id], get_embedder(models[image.collection_id].name).spec))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool:
        decoded_stream = pool.map(lambda job: _decode_and_mask(job[0], job[2].input_size, cut_out), work)
        batch: list[tuple[ItemImage, EmbeddingModel, Image.Image, Prepared]] = []
        for (image, model, spec), result in zip(work, decoded_stream):
            if isinstance(result, str):
                if not ItemImage.objects.filter(pk=image.pk).exists():
                    outcomes[image.pk] = "skipped"  # deleted while it was decoded (its original went with it)
                    continue
                fail(image.pk, result)
                outcomes[image.pk] = "failed"
                continue
            rgb, mask, share = result
            suspect = share is not None and mask_suspect(share, shares[image.collection_id])
            if share is not None:
                shares[image.collection_id].append(share)
            # A suspect cut-out would embed the wrong thing: fall back to the uncut image.
            crop = crop_for(rgb, None if suspect else mask, spec.input_size)
            batch.append((image, model, rgb, Prepared(crop, mask, share, suspect)))
            if len(batch) == EMBED_BATCH:
                outcomes.update(_embed_and_store(batch, refine))
                batch = []
                images_claims_renew({image.claimed_by for image in images})  # the rest are still ours
        if batch:
            outcomes.update(_embed_and_store(batch, refine))
    return outcomes


def _decode_and_mask(image: ItemImage, input_size: int, cut_out: bool
                     ) -> tuple[Image.Image, object, float | None] | str:
    """Decode one image and cut it out when its collection wants it (in a decode thread, no database).

    Returns the RGB image, its mask and subject share (None without background removal), or the
    reason the image failed.
    """
    from ml.background import BackgroundModelMissing

    try:
        cut = cut_out and image.collection.remove_background
        # Without background removal the embedder's input size is all the decode needs.
        rgb = decode(image, WORKING_SIZE if cut else input_size).convert("RGB")
        if not cut:
            return rgb, None, None
        mask, share = mask_of(rgb, settings.STYLESITE_BACKGROUND_THREADS)
        return rgb, mask, share
    except PermanentFailure as exc:
        return str(exc)
    except BackgroundModelMissing as exc:
        return str(exc)
    except Exception as exc:  # an unexpected error in one image must not fail its batch
        log.exception("image %s failed in the pipeline", image.pk)
        return f"internal error: {type(exc).__name__}: {exc}"


def _embed_and_store(batch: list[tuple[ItemImage, EmbeddingModel, Image.Image, Prepared]], refine: bool
                     ) -> dict[int, str]:
    from ml.embedders import get_embedder

    rows: list[Embedding] = []
    for model in {model.pk: model for _, model, _, _ in batch}.values():
        members = [(image, prepared) for image, m, _, prepared in batch if m.pk == model.pk]
        vectors = get_embedder(model.name).embed([prepared.crop for _, prepared in members])
        rows += [Embedding(image=image, item_id=image.item_id, model=model, vector=vector.tolist())
                 for (image, _), vector in zip(members, vectors)]
    for image, _, decoded, prepared in batch:
        cutout_files_save(image, decoded, prepared)
    cutter = current_cutter()
    outcomes: dict[int, str] = {}
    with transaction.atomic():
        # Deleting an image locks its row first, so this lock sees a delete that came meanwhile:
        # then store nothing for it and remove the files just written (no orphan vector or file).
        alive = set(ItemImage.objects.select_for_update().filter(pk__in=[i.pk for i, _, _, _ in batch])
                    .values_list("pk", flat=True))
        embeddings_upsert([row for row in rows if row.image_id in alive])
        for image, _, _, prepared in batch:
            if image.pk not in alive:
                files_delete_on_commit(image.mask, image.cutout)
                outcomes[image.pk] = "skipped"
                continue
            image_mark_ready(image.pk, mask=image.mask.name, cutout=image.cutout.name,
                             foreground_share=prepared.share, suspect=prepared.suspect,
                             refined=prepared.mask is not None or not image.collection.remove_background,
                             cutter=cutter if prepared.mask is not None else "")
            outcomes[image.pk] = "refined" if refine else "ready"
    return outcomes


def drained_collections_announce(collection_ids: set[int]) -> None:
    """Send ``ingest_drained`` for each collection whose ingest has just drained (nothing pending or
    processing, at least ``STYLESITE_STYLES_AUTO_MIN_IMAGES`` ready): the styles area listens and
    clusters it, so the Styles page has a map without anyone running a command."""
    for collection_id in collection_ids:
        images = ItemImage.objects.filter(collection_id=collection_id)
        if (images.filter(status__in=[ItemImage.Status.PENDING, ItemImage.Status.PROCESSING]).exists()
                or images.filter(status=ItemImage.Status.READY).count() < settings.STYLESITE_STYLES_AUTO_MIN_IMAGES):
            continue
        ingest_drained.send(sender=ItemImage, collection_id=collection_id)


def failed_images_retry(collection: Collection) -> int:
    """Send a collection's failed images (either pass) through the pipeline again; returns how many."""
    from .selectors import failed_image_ids

    return image_mark_pending(ids=failed_image_ids(collection))


def current_model_for(image: ItemImage) -> EmbeddingModel:
    """The model new vectors go to: the registry's current version of the collection's active model.

    When code shipped new weights for the active model, new images get the new version and the
    collection keeps searching the old one until ``reembed --activate`` backfills and switches.
    The first image of a new collection sets up its active model here (the ensure step).
    """
    from ml.embedders import UnknownModel, WeightsMissing

    try:
        active = collection_embedding_ensure(image.collection)
        current = embedding_model_ensure(active.name)
    except (UnknownModel, WeightsMissing) as exc:
        raise PermanentFailure(str(exc)) from exc
    if current.pk != active.pk:
        log.warning("collection %s searches %s but the registry now has %s; run reembed --activate",
                    image.collection.slug, active, current)
    return current


def warm_up_models(*, build: bool = True) -> None:
    """Load every active embedder and the background model once, so the first task is not slow.

    ``build=False`` (web workers) loads the background model only if its derived file (int8, or
    another size: ``ml.background``) is already written: writing it takes a minute of CPU at first
    start, which a Celery worker may spend but a web worker must not (gunicorn kills a worker that
    is not serving within its timeout)."""
    from ml.background import get_session
    from ml.embedders import get_embedder

    try:
        names = set(Collection.objects.values_list("embedding_model", flat=True))
        for name in names:
            get_embedder(name)
        if Collection.objects.filter(remove_background=True).exists():
            get_session(settings.STYLESITE_BACKGROUND_MODEL, settings.STYLESITE_BACKGROUND_SIZE,
                        settings.STYLESITE_BACKGROUND_THREADS, settings.STYLESITE_BACKGROUND_PRECISION, build=build)
    except Exception:  # a missing model is reported by the task that needs it, with its reason
        log.warning("worker warm-up could not load every model", exc_info=True)
