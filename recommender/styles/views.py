"""Style pages: the map with its charts, cluster grids, coherence rating, classifier report, export."""
from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from catalog.models import Collection
from catalog.selectors import collection_by_slug
from stylesite.exceptions import DomainError, InvalidInput
from stylesite.params import parse_int

from ..models import StyleCluster
from . import selectors, services
from .clustering import MAP_METHODS

CLUSTER_PAGE_SIZE = 48


def styles_index(request: HttpRequest) -> HttpResponse:
    collections = Collection.objects.select_related("style_clustering").order_by("name")
    return render(request, "recommender/styles/index.html", {"collections": collections})


def style_map(request: HttpRequest, slug: str) -> HttpResponse:
    collection = collection_by_slug(slug)
    clustering = selectors.clustering_of(collection)
    clusters = list(selectors.clusters_of(collection))
    coherence = dict((c.pk if c else None, s) for c, s in selectors.coherence_table(collection)) if clusters else {}
    curves = []
    if clustering:
        curves = [{"k": int(k), "silhouette": clustering.silhouette_by_k[k],
                   "inertia": clustering.inertia_by_k.get(k)} for k in sorted(clustering.silhouette_by_k, key=int)]
    return render(request, "recommender/styles/map.html", {
        "collection": collection, "clustering": clustering, "curves": curves,
        "clusters": [(c, _top_mix(c.label_mix), coherence.get(c.pk)) for c in clusters],
        "cluster_names": {c.index: c.name for c in clusters},
        "control": coherence.get(None),
        "jobs": selectors.latest_jobs(collection), "classifier": selectors.classifier_of(collection),
        "map_methods": MAP_METHODS,
    })


def _top_mix(label_mix: dict[str, int], n: int = 3) -> list[tuple[str, int]]:
    """The ``n`` most common labels of a cluster (JSON objects do not keep their order in Postgres)."""
    return sorted(label_mix.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


@staff_member_required
@require_POST
def style_job_start(request: HttpRequest, slug: str) -> HttpResponse:
    collection = collection_by_slug(slug)
    params = {k: request.POST[k] for k in ("map_method", "k_min", "k_max") if request.POST.get(k)}
    if request.POST.get("activate"):
        params["activate"] = True
    try:
        job = services.style_job_start(collection=collection, kind=request.POST.get("kind", ""), params=params)
        messages.success(request, f"{job.get_kind_display()} queued.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("recommender:style-map", slug=slug)


def style_cluster(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(StyleCluster.objects.select_related("collection"), pk=pk)
    page = Paginator(selectors.cluster_items(cluster), CLUSTER_PAGE_SIZE).get_page(request.GET.get("page"))
    total = sum(cluster.label_mix.values()) or 1
    mix = [(label, n, round(100 * n / total)) for label, n in
           sorted(cluster.label_mix.items(), key=lambda kv: -kv[1])]
    return render(request, "recommender/styles/cluster.html", {
        "cluster": cluster, "page": page, "mix": mix, "coherence": selectors.coherence_of(cluster),
        "control": selectors.coherence_control(cluster.collection), "query": "",
    })


@login_required
def style_rate(request: HttpRequest, slug: str) -> HttpResponse:
    collection = collection_by_slug(slug)
    if request.method == "POST":
        try:
            try:
                set_id = parse_int(request.POST.get("set"), name="set", minimum=1)
            except InvalidInput:
                raise InvalidInput("this form is missing its set of images; please rate the next one") from None
            services.coherence_rate(user=request.user, set_id=set_id, score=request.POST.get("score"))
            messages.success(request, "Thanks — here is another set.")
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("recommender:style-rate", slug=slug)
    try:
        coherence_set = services.coherence_set_next(collection, request.user)
    except DomainError as exc:
        return render(request, "recommender/styles/rate.html", {"collection": collection, "error": exc.message},
                      status=200)
    items = list(coherence_set.items.with_cover().order_by("?"))
    return render(request, "recommender/styles/rate.html", {
        "collection": collection, "set": coherence_set, "items": items,
        "rated": request.user.coherence_ratings.filter(set__collection=collection).count(),
        "scale": [(1, "Not at all"), (2, "Barely"), (3, "Somewhat"), (4, "Mostly"), (5, "Clearly alike")],
    })


def style_classifier(request: HttpRequest, slug: str) -> HttpResponse:
    from ml.classifier import Report
    from ml.plots import confusion_svg

    collection = collection_by_slug(slug)
    classifier = selectors.classifier_of(collection)
    reports = []
    if classifier:
        for name, data in (("Validation", classifier.validation), ("Test", classifier.test)):
            if data and data.get("n"):
                report = Report(**data)
                reports.append({"name": name, "report": report, "svg": mark_safe(confusion_svg(report)),  # noqa: S308
                                "rows": list(zip(report.classes, report.confusion))})
    return render(request, "recommender/styles/classifier.html",
                  {"collection": collection, "classifier": classifier, "reports": reports})


class _Echo:
    def write(self, value: str) -> str:
        return value


def style_export(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    collection = collection_by_slug(slug)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(selectors.EXPORT_HEADER)
        for row in selectors.export_rows(collection):
            yield writer.writerow([row.item_id, row.source_name, row.label, row.cluster_index, row.cluster_name,
                                   f"{row.x:.5f}", f"{row.y:.5f}"])

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="styles-{collection.slug}.csv"'
    return response
