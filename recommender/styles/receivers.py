"""Hooks of the styles area installed when the app is ready.

When a collection's first ingest drains, its clustering and classifier jobs start by themselves, and
again when its searches switch to another embedding model: a map or classifier built in the old
space would otherwise describe vectors the collection no longer serves.

Learned similarity spaces are embedders made of a backbone and a stored head; processes started
before a head was fitted (web, workers) find it through this resolver the first time they see its
name, so new images keep getting vectors in the served space without a restart.
"""
from __future__ import annotations

from django.dispatch import receiver

from catalog.models import Collection
from ml.embedders import add_resolver
from stylesite.exceptions import Conflict

from ..embeddings import active_model_switched
from ..models import StyleClassifier, StyleClustering, StyleJob
from ..pipeline import ingest_drained
from .services import style_job_start
from .similarity import head_model_resolve

add_resolver(head_model_resolve)


@receiver(ingest_drained, dispatch_uid="recommender-styles-first-map")
def styles_start_after_first_ingest(sender=None, collection_id: int | None = None, **_kwargs) -> None:
    """Cluster a collection and train its classifier after its first ingest (never again by itself:
    later runs are a curator's choice)."""
    collection = Collection.objects.filter(pk=collection_id).first()
    if collection is None or StyleJob.objects.filter(collection=collection).exists():
        return
    for kind in (StyleJob.Kind.CLUSTER, StyleJob.Kind.CLASSIFY):
        try:
            style_job_start(collection=collection, kind=kind)
        except Conflict:  # another worker's batch drained the collection at the same moment
            pass


@receiver(active_model_switched, dispatch_uid="recommender-styles-follow-space")
def styles_rebuild_after_switch(sender=None, collection_id: int | None = None, model_id: int | None = None,
                                **_kwargs) -> None:
    """Rebuild the clustering/map and the classifier that exist in another space, with the parameters
    of the last finished job of each kind (a curator's k range and map method carry over)."""
    collection = Collection.objects.filter(pk=collection_id).first()
    if collection is None:
        return
    stale = {
        StyleJob.Kind.CLUSTER: StyleClustering.objects.filter(collection=collection).exclude(model_id=model_id),
        StyleJob.Kind.CLASSIFY: StyleClassifier.objects.filter(collection=collection).exclude(model_id=model_id),
    }
    for kind, built in stale.items():
        if not built.exists():
            continue
        last = (StyleJob.objects.filter(collection=collection, kind=kind, status=StyleJob.Status.DONE)
                .order_by("-finished").values_list("params", flat=True).first())
        try:
            style_job_start(collection=collection, kind=kind, params=last or {})
        except Conflict:  # one is queued or running; it reads the active model when it starts
            pass
