"""The image pipeline for one catalogue image: claim, steps, vector, ready — or a failure with a reason.

Called by ``tasks.process_image_task``. ItemImage's state changes through ``catalog.services``;
vectors through the embeddings area.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from catalog.models import Collection, ItemImage
from catalog.services import (
    files_delete_on_commit,
    image_claim,
    image_fail,
    image_mark_ready,
)

from ..embeddings import (
    collection_embedding_ensure,
    embedding_model_ensure,
    embeddings_upsert,
)
from ..models import Embedding, EmbeddingModel
from .steps import WORKING_SIZE, PermanentFailure, cutout_files_save, decode, prepare

log = logging.getLogger(__name__)


def image_process(image_id: int) -> str:
    """Run the whole pipeline for one image; returns what happened ("ready", "failed", "skipped")."""
    from ml.embedders import get_embedder

    image = image_claim(image_id)
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
        image_fail(image_id, str(exc))
        return "failed"
    except Exception:
        if not ItemImage.objects.filter(pk=image_id).exists():
            return "skipped"  # deleted while it was processed (its original went with it)
        raise
    cutout_files_save(image, decoded, prepared)
    with transaction.atomic():
        # Deleting an image locks its row first, so this lock sees a delete that came meanwhile:
        # then store nothing and remove the files just written (no orphan vector or file).
        if not ItemImage.objects.select_for_update().filter(pk=image_id).exists():
            files_delete_on_commit(image.mask, image.cutout)
            return "skipped"
        embeddings_upsert([Embedding(image=image, item_id=image.item_id, model=model, vector=vector.tolist())])
        image_mark_ready(image_id, mask=image.mask.name, cutout=image.cutout.name,
                         foreground_share=prepared.share, suspect=prepared.suspect)
    return "ready"


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


def warm_up_models() -> None:
    """Load every active embedder and the background model once, so the first task is not slow."""
    from ml.background import get_session
    from ml.embedders import get_embedder

    try:
        names = set(Collection.objects.values_list("embedding_model", flat=True))
        for name in names:
            get_embedder(name)
        if Collection.objects.filter(remove_background=True).exists():
            get_session(settings.STYLESITE_BACKGROUND_MODEL)
    except Exception:  # a missing model is reported by the task that needs it, with its reason
        log.warning("worker warm-up could not load every model", exc_info=True)
