"""Writes of the style classifier: training (only when labels or vectors changed), predictions,
curation lists (mislabels, near-duplicates) and resolving them.

Heads are fitted here, in Celery jobs or commands, and stored as versioned artifacts; pages and
the API load them through ``recommender.artifacts`` and never fit.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.db import transaction

from catalog.models import Collection, Item
from catalog.services import item_merge
from stylesite.exceptions import Conflict, InvalidInput, NotFound, NotReady

from ..artifacts import artifact_load, artifact_path, artifact_write
from ..embeddings import CollectionVectors, collection_vectors
from ..models import Embedding, NearDuplicate, StyleClassifier, StylePrediction, Vote

Progress = Callable[[float, str], None]


def stage(progress: Progress, start: float, end: float) -> Progress:
    """A progress callback for one stage of a job: its 0..1 mapped onto ``start..end`` of the whole."""
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


def head_load(classifier: StyleClassifier):
    """The trained head of ``classifier``, through the processes' one bounded model cache."""
    from ml.classifier import StyleHead

    path = artifact_path(classifier.artifact)
    return artifact_load(("style-head", str(path)), lambda: StyleHead.load(path))


def classifier_run(collection: Collection, progress: Progress = lambda f, m: None) -> dict:
    """Train the head when labels or embeddings changed, then refresh predictions and curation lists."""
    from ml.classifier import evaluate, fingerprint, train_head

    data = collection_vectors(collection)
    parts = {split: [i for i, s in enumerate(data.splits) if s == split and data.labels[i]]
             for split in (Item.Split.TRAIN, Item.Split.VALIDATION, Item.Split.TEST)}
    train, val, test = parts[Item.Split.TRAIN], parts[Item.Split.VALIDATION], parts[Item.Split.TEST]
    if len({data.labels[i] for i in train}) < 2:
        raise NotReady(f"{collection.slug} needs embedded items of at least two labels in the train split")

    def subset(idx: list[int]) -> tuple[np.ndarray, list[str]]:
        return data.vectors[idx].reshape(len(idx), data.vectors.shape[1]), [data.labels[i] for i in idx]

    (tx, ty), (vx, vy), (sx, sy) = subset(train), subset(val), subset(test)
    fp = fingerprint(tx, ty, vx, vy, f"{data.model.name}/{data.model.version}")
    latest = StyleClassifier.objects.filter(collection=collection).first()
    retrained = not (latest and latest.fingerprint == fp and latest.model_id == data.model.pk
                     and artifact_path(latest.artifact).is_file())
    if retrained:
        head, candidates = train_head(tx, ty, vx, vy, progress=stage(progress, 0.0, 0.7))
        version = (latest.version + 1) if latest else 1
        artifact = f"style-heads/{collection.slug}/v{version}-{fp[:12]}.npz"
        head.meta.update({"fingerprint": fp, "model": f"{data.model.name}/{data.model.version}"})
        artifact_write(artifact, head.save)
        classifier = StyleClassifier.objects.create(
            collection=collection, model=data.model, version=version, kind=head.kind, fingerprint=fp,
            artifact=artifact, classes=head.classes, candidates=candidates,
            validation=evaluate(head, vx, vy).as_dict(), test=evaluate(head, sx, sy).as_dict(),
        )
    else:
        classifier = latest
        head = head_load(classifier)
    progress(0.75, "predicting every item")
    curation = _curation_refresh(collection, classifier, head, data)
    progress(1.0, "done")
    return {"version": classifier.version, "retrained": retrained, "kind": classifier.kind,
            "test_accuracy": round(classifier.test.get("accuracy", 0.0), 4),
            "test_macro_f1": round(classifier.test.get("macro_f1", 0.0), 4),
            "validation_accuracy": round(classifier.validation.get("accuracy", 0.0), 4), **curation}


def _curation_refresh(collection: Collection, classifier: StyleClassifier, head, data: CollectionVectors) -> dict:
    from ml.clustering import near_duplicate_pairs, neighbour_majority

    proba = head.predict_proba(data.vectors)
    best = proba.argmax(axis=1)
    names, shares = neighbour_majority(data.vectors, data.labels, k=settings.STYLESITE_CURATION_NEIGHBOURS)
    pairs = near_duplicate_pairs(data.vectors, threshold=settings.STYLESITE_DUPLICATE_SIMILARITY)
    with transaction.atomic():
        StylePrediction.objects.filter(item__collection=collection).delete()
        StylePrediction.objects.bulk_create([
            StylePrediction(item_id=item_id, classifier=classifier, label=head.classes[int(b)],
                            probability=float(proba[i, b]), neighbour_label=names[i],
                            neighbour_share=float(shares[i]))
            for i, (item_id, b) in enumerate(zip(data.item_ids, best))
        ], batch_size=2000)
        # Pairs keep a curator's earlier decision; only new pairs are added.
        NearDuplicate.objects.bulk_create([
            NearDuplicate(collection=collection, first_id=min(data.item_ids[a], data.item_ids[b]),
                          second_id=max(data.item_ids[a], data.item_ids[b]), similarity=sim)
            for a, b, sim in pairs
        ], ignore_conflicts=True, batch_size=2000)
    return {"predictions": len(data.item_ids), "duplicate_pairs": len(pairs)}


def duplicate_resolve(pair: NearDuplicate, action: str) -> NearDuplicate:
    """``keep``: both items stay, the pair is closed. ``merge``: the second item's images and votes
    move to the first and the second item is deleted."""
    pair = NearDuplicate.objects.select_related("first", "second").filter(pk=pair.pk).first()
    if pair is None:  # merging another pair deleted one of its items
        raise NotFound("this pair no longer exists: one of its items was merged away")
    if pair.resolution != NearDuplicate.Resolution.OPEN:
        raise Conflict(f"pair {pair.pk} was already resolved ({pair.get_resolution_display()})")
    if action == "keep":
        NearDuplicate.objects.filter(pk=pair.pk).update(resolution=NearDuplicate.Resolution.KEPT)
        pair.resolution = NearDuplicate.Resolution.KEPT
        return pair
    if action != "merge":
        raise InvalidInput(f"unknown action {action!r}; use keep or merge")
    keep, drop = pair.first, pair.second
    with transaction.atomic():
        Embedding.objects.filter(item=drop).update(item=keep)
        voted = Vote.objects.filter(item=keep).values_list("user_id", flat=True)
        Vote.objects.filter(item=drop).exclude(user_id__in=voted).update(item=keep)
        # Deleting the item removes this pair (and any other pair of it) by cascade.
        item_merge(keep=keep, drop=drop)
    pair.resolution = NearDuplicate.Resolution.MERGED
    return pair


