"""Clustering of a collection's vectors with k by silhouette, its 2-D style map, cluster names."""
from __future__ import annotations

import time
from collections import Counter

import numpy as np
from django.db import transaction

from catalog.models import Collection
from stylesite.exceptions import NotReady

from ..embeddings import as_array, collection_vectors
from ..models import CoherenceSet, ItemStyle, StyleCluster, StyleClustering
from .curation import Progress, stage

MAP_METHODS = ("tsne", "pca")
# Re-clustering keeps a curator's name when the new centroid is at least this close to the old one.
NAME_MATCH_SIMILARITY = 0.9


def clustering_run(collection: Collection, *, map_method: str = "tsne", k_min: int = 2, k_max: int = 30,
                   progress: Progress = lambda f, m: None) -> dict:
    """Cluster the active embeddings, draw the map, and replace the previous result atomically."""
    from ml.clustering import (
        cluster_embeddings,
        default_name,
        match_clusters,
        project_2d,
    )

    started, cpu_started = time.monotonic(), time.process_time()
    data = collection_vectors(collection)
    if len(data.item_ids) < 3:
        raise NotReady(f"{collection.slug} has {len(data.item_ids)} embedded item(s); clustering needs 3 or more")
    result = cluster_embeddings(data.vectors, k_min=k_min, k_max=k_max, progress=stage(progress, 0.0, 0.6))
    progress(0.6, f"drawing the {map_method} map")
    map_started, map_cpu_started = time.monotonic(), time.process_time()
    coords = project_2d(data.vectors, method=map_method)
    map_seconds, map_cpu = time.monotonic() - map_started, time.process_time() - map_cpu_started
    progress(0.95, "saving")

    old = list(StyleCluster.objects.filter(collection=collection, named_by_curator=True))
    old_centroids = np.array([as_array(c.centroid) for c in old], dtype=np.float32)
    matched = match_clusters(old_centroids, result.centroids, NAME_MATCH_SIMILARITY) if old else {}
    with transaction.atomic():
        new_clusters = []
        for index in range(result.k):
            members = [data.labels[i] for i in np.flatnonzero(result.labels == index)]
            carried = old[matched[index]] if index in matched else None
            new_clusters.append(StyleCluster(
                collection=collection, model=data.model, k=result.k, index=index,
                name=carried.name if carried else default_name(members, index),
                named_by_curator=carried is not None, size=len(members),
                label_mix=dict(Counter(label or "(none)" for label in members).most_common()),
                centroid=result.centroids[index].tolist(),
            ))
        # Coherence sets of a matched cluster follow it; the rest lose their cluster (kept as history).
        old_sets = {old[o].pk: n for n, o in matched.items()}
        set_owner = dict(CoherenceSet.objects.filter(cluster__collection=collection).values_list("pk", "cluster_id"))
        StyleCluster.objects.filter(collection=collection).delete()
        created = StyleCluster.objects.bulk_create(new_clusters)
        for set_pk, old_cluster_pk in set_owner.items():
            if old_cluster_pk in old_sets:
                CoherenceSet.objects.filter(pk=set_pk).update(cluster=created[old_sets[old_cluster_pk]])
        ItemStyle.objects.bulk_create([
            ItemStyle(item_id=item_id, cluster=created[int(label)], x=float(x), y=float(y))
            for item_id, label, (x, y) in zip(data.item_ids, result.labels, coords)
        ], batch_size=2000)
        seconds = time.monotonic() - started
        StyleClustering.objects.update_or_create(collection=collection, defaults={
            "model": data.model, "k": result.k, "silhouette": result.silhouette,
            "silhouette_by_k": {str(k): v for k, v in result.silhouette_by_k.items()},
            "inertia_by_k": {str(k): v for k, v in result.inertia_by_k.items()},
            "map_method": map_method, "items": len(data.item_ids), "seconds": seconds,
        })
    return {"k": result.k, "silhouette": round(result.silhouette, 4), "items": len(data.item_ids),
            "map_method": map_method, "map_seconds": round(map_seconds, 2), "seconds": round(seconds, 2),
            "map_cpu_seconds": round(map_cpu, 2), "cpu_seconds": round(time.process_time() - cpu_started, 2),
            "kept_names": len(matched)}
