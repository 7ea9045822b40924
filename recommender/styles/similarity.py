"""Writes of the learned similarity space: fit a head on the collection's labels (only when labels or
vectors changed), fill its served vectors, and switch the collection to it.

The head (``ml.similarity``) maps the backbone's raw vectors into a space where same-label items
are close; the served vector blends raw and learned similarity and is stored as an embedding model
of its own (name ``<backbone>+sim-<fingerprint>``), so searches, its HNSW index and the
backfill-then-activate switch work as for any backbone. New images keep getting served vectors
through the pipeline: the composed model is in the embedder registry (``head_model_resolve``).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db.models import Max

from catalog.models import Collection, Item, ItemImage
from stylesite.exceptions import NotReady

from ..artifacts import artifact_load, artifact_path, artifact_write
from ..embeddings import (
    active_model,
    active_model_switch,
    as_array,
    embedding_model_ensure,
    embeddings_upsert,
)
from ..models import Embedding, EmbeddingModel, LearnedSpace
from .curation import classifier_run, stage

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
UPSERT_BATCH = 1000


def _noop(_fraction: float, _message: str) -> None:
    return None


@dataclass
class BaseVectors:
    """Raw backbone vectors of a collection: one row per image, and which row is each item's cover."""

    model: EmbeddingModel
    image_ids: list[int]
    item_ids: list[int]
    vectors: np.ndarray
    covers: list[int]  # row per item: its first image
    labels: list[str]  # per cover
    splits: list[str]  # per cover


def base_model_of(collection: Collection) -> EmbeddingModel:
    """The backbone model a head is fitted on: the active model, or the base of the active head."""
    model = active_model(collection)
    space = LearnedSpace.objects.select_related("base_model").filter(model=model).first()
    return space.base_model if space else model


def head_load(space: LearnedSpace):
    """The fitted head of ``space``, through the processes' one bounded model cache."""
    from ml.similarity import SimilarityHead

    path = artifact_path(space.artifact)
    return artifact_load(("similarity-head", str(path)), lambda: SimilarityHead.load(path))


def head_model_resolve(name: str) -> bool:
    """Register ``<backbone>+sim-<fp>`` from its stored head, for a process started before the fit
    (installed as an ``ml.embedders`` resolver by ``receivers``). A read: nothing is written."""
    from ml.similarity import is_head_model, register_head

    if not is_head_model(name):
        return False
    space = LearnedSpace.objects.filter(model__name=name).order_by("-pk").first()
    if space is None or not artifact_path(space.artifact).is_file():
        return False
    try:
        register_head(head_load(space))
    except ValueError as exc:  # the backbone's weights changed since the fit: refit before using it
        log.warning("learned space %s cannot be used: %s", name, exc)
        return False
    return True


def raw_vectors_ensure(collection: Collection, model: EmbeddingModel, progress: Progress = _noop) -> int:
    """Embed with the backbone every ready image that has no raw vector (images processed after the
    switch only got served vectors); returns how many were embedded."""
    from ml.embedders import get_embedder

    from ..pipeline import PermanentFailure, stored_crop

    todo = list(ItemImage.objects.filter(collection=collection, status=ItemImage.Status.READY)
                .exclude(embeddings__model=model).select_related("collection").order_by("pk"))
    if not todo:
        return 0
    embedder = get_embedder(model.name)
    if embedder.spec.version != model.version:
        raise NotReady(f"{collection.slug}'s vectors are from {model}; this machine has {embedder.spec.version}. "
                       f"Run `manage.py reembed --collection {collection.slug} --model {model.name}` first.")
    done = 0
    for start in range(0, len(todo), 32):
        batch, crops = [], []
        for image in todo[start:start + 32]:
            try:
                crops.append(stored_crop(image, embedder.spec.input_size))
                batch.append(image)
            except PermanentFailure as exc:
                log.warning("image %s: no raw vector: %s", image.pk, exc)
        if batch:
            vectors = embedder.embed(crops)
            embeddings_upsert([Embedding(image=img, item_id=img.item_id, model=model, vector=vec.tolist())
                               for img, vec in zip(batch, vectors)])
        done += len(batch)
        progress(min(start + 32, len(todo)) / len(todo), f"raw vectors: {done} of {len(todo)} images")
    return done


def base_vectors(collection: Collection, model: EmbeddingModel) -> BaseVectors:
    """Every ready image's vector under ``model`` with its item's label and split."""
    rows = list(
        Embedding.objects.filter(model=model, item__collection=collection, image__status=ItemImage.Status.READY)
        .order_by("item_id", "image__position", "image_id")
        .values_list("image_id", "item_id", "item__label", "item__split", "vector")
    )
    vectors = np.array([as_array(r[4]) for r in rows], dtype=np.float32).reshape(len(rows), model.dimension)
    covers, labels, splits, seen = [], [], [], set()
    for i, (_image, item, label, split, _vector) in enumerate(rows):
        if item not in seen:
            seen.add(item)
            covers.append(i)
            labels.append(label)
            splits.append(split)
    return BaseVectors(model, [r[0] for r in rows], [r[1] for r in rows], vectors, covers, labels, splits)


def labelled_split(data: BaseVectors, split: str,
                   only: set[int] | None = None) -> tuple[np.ndarray, list[str]]:
    """Cover vectors and labels of the labelled items of ``split`` (of those in ``only`` when given),
    in item order."""
    items = [i for i, (s, label) in enumerate(zip(data.splits, data.labels)) if s == split and label
             and (only is None or data.item_ids[data.covers[i]] in only)]
    rows = [data.covers[i] for i in items]
    return data.vectors[rows].reshape(len(rows), data.vectors.shape[1]), [data.labels[i] for i in items]


def labelled_item_ids(data: BaseVectors) -> set[int]:
    """The items with a label (the rows ``labelled_split`` can return)."""
    return {data.item_ids[row] for row, label in zip(data.covers, data.labels) if label}


def similarity_run(collection: Collection, *, activate: bool = False, kinds: tuple[str, ...] | None = None,
                   progress: Progress = _noop) -> dict:
    """Fit (or reuse) the head, fill the served space's vectors, and switch to it when asked.

    A collection without labels of at least two kinds in its train split keeps its raw vectors
    (``NotReady``); so does one whose head blends in no learned similarity (weight 1: the learned
    part did not measurably help), and ``activate`` then switches its searches back to raw.
    Safe to run twice: an unchanged fingerprint reuses the head, vectors are upserts.
    """
    from ml.similarity import (
        DEFAULT_KINDS,
        SimilarityHead,
        fingerprint,
        fit_head,
        register_head,
    )

    base = base_model_of(collection)
    raw_vectors_ensure(collection, base, stage(progress, 0.0, 0.1))
    data = base_vectors(collection, base)
    tx, ty = labelled_split(data, Item.Split.TRAIN)
    vx, vy = labelled_split(data, Item.Split.VALIDATION)
    if len(set(ty)) < 2:
        raise NotReady(f"{collection.slug} needs embedded items of at least two labels in the train split to "
                       "learn a similarity; it keeps its raw vectors")
    fp = fingerprint(tx, ty, vx, vy, f"{base.name}/{base.version}")
    latest = LearnedSpace.objects.filter(collection=collection, base_model=base).first()
    retrained = not (latest and latest.fingerprint == fp and artifact_path(latest.artifact).is_file())
    if retrained:
        started = time.perf_counter()
        head, candidates = fit_head(tx, ty, vx, vy, base=base.name, base_version=base.version,
                                    kinds=kinds or DEFAULT_KINDS, progress=stage(progress, 0.1, 0.8))
        seconds = time.perf_counter() - started
        version = (LearnedSpace.objects.filter(collection=collection).aggregate(v=Max("version"))["v"] or 0) + 1
        artifact = f"similarity-heads/{collection.slug}/v{version}-{fp[:12]}.npz"
        artifact_write(artifact, head.save)
        register_head(head)
        served = embedding_model_ensure(head.model_name)
        space = LearnedSpace.objects.create(
            collection=collection, base_model=base, model=served, version=version, kind=head.kind,
            weight=head.weight, fingerprint=fp, artifact=artifact, candidates=candidates, seconds=round(seconds, 2))
    else:
        space = latest
        head: SimilarityHead = head_load(space)
        register_head(head)
        served = embedding_model_ensure(head.model_name)
    kept_raw = head.weight >= 1.0
    if kept_raw:
        # The learned part gained less than one standard error of validation P@10 (``ml.similarity``):
        # the blend would rank exactly as raw does, so raw vectors are served and no copy is stored.
        served = base
    else:
        progress(0.8, "writing the served vectors")
        for start in range(0, len(data.image_ids), UPSERT_BATCH):
            end = start + UPSERT_BATCH
            vectors = head.serve(data.vectors[start:end])
            embeddings_upsert([Embedding(image_id=image, item_id=item, model=served, vector=vec.tolist()) for
                               image, item, vec in zip(data.image_ids[start:end], data.item_ids[start:end], vectors)])
            progress(0.8 + 0.1 * min(end, len(data.image_ids)) / max(len(data.image_ids), 1),
                     "writing the served vectors")
    classifier = None
    if activate:
        missing = (ItemImage.objects.filter(collection=collection, status=ItemImage.Status.READY)
                   .exclude(embeddings__model=served).count())
        if missing:
            raise NotReady(f"not switching: {missing} ready image(s) have no vector in {served}")
        active_model_switch(collection, served)
        # The classifier (photo search's looks_like, curation) follows the space searches now use.
        classifier = classifier_run(collection, progress=stage(progress, 0.9, 1.0))
    progress(1.0, "done")
    return {"version": space.version, "retrained": retrained, "kind": space.kind, "weight": space.weight,
            "model": str(served), "activated": activate, "kept_raw": kept_raw, "images": len(data.image_ids),
            "validation_p@10": next((c["served_p@10"] for c in space.candidates if c["kind"] == space.kind), None),
            "classifier": classifier and {k: classifier[k] for k in ("version", "retrained", "test_accuracy")}}

