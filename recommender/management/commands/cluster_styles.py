from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection
from recommender.models import StyleJob
from recommender.styles.clustering import MAP_METHODS
from recommender.styles.jobs import style_job_params, style_job_run
from stylesite.exceptions import DomainError


class Command(BaseCommand):
    help = ("Cluster a collection's active embeddings (k chosen by silhouette) and draw its style map, "
            "here and now; prints the silhouette and inertia of every k and the timings.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", required=True)
        parser.add_argument("--map", dest="map_method", choices=MAP_METHODS, default="tsne")
        parser.add_argument("--k-min", type=int, default=2)
        parser.add_argument("--k-max", type=int, default=30)

    def handle(self, *args, collection: str, map_method: str, k_min: int, k_max: int, **options) -> None:
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection with slug {collection!r}")
        try:
            params = style_job_params(StyleJob.Kind.CLUSTER, {"map_method": map_method, "k_min": k_min, "k_max": k_max})
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        # Recorded as a job like the page's, so the page shows its result and history.
        job = StyleJob.objects.create(collection=target, kind=StyleJob.Kind.CLUSTER, params=params)
        status = style_job_run(job.pk)
        job.refresh_from_db()
        if status != StyleJob.Status.DONE:
            raise CommandError(f"clustering failed: {job.error}")
        clustering = target.style_clustering
        self.stdout.write(f"{'k':>3}  {'silhouette':>10}  {'inertia':>10}")
        for k in sorted(clustering.silhouette_by_k, key=int):
            mark = "  <- chosen" if int(k) == clustering.k else ""
            silhouette, inertia = clustering.silhouette_by_k[k], clustering.inertia_by_k[k]
            self.stdout.write(f"{k:>3}  {silhouette:>10.4f}  {inertia:>10.1f}{mark}")
        r = job.result
        self.stdout.write(self.style.SUCCESS(
            f"{target.slug}: {r['items']} items, k={r['k']} (silhouette {r['silhouette']:.4f}); "
            f"{map_method} map {r['map_seconds']:.1f} s (CPU {r['map_cpu_seconds']:.1f} s); "
            f"whole job {r['seconds']:.1f} s (CPU {r['cpu_seconds']:.1f} s); "
            f"{r['kept_names']} curator name(s) kept."))
