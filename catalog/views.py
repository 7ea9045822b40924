"""Catalogue pages."""
from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from .models import Collection, Item
from .selectors import catalog_stats, collection_by_slug, filter_items, image_progress

PAGE_SIZE = 24


def item_list(request: HttpRequest) -> HttpResponse:
    items = filter_items(Item.objects.visible().with_cover(), request.GET).order_by("-id")
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    collection = collection_by_slug(request.GET.get("collection"))
    facets = Item.objects.filter(collection=collection) if collection else Item.objects.all()
    progress = image_progress(collection)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "catalog/item_list.html", {
        "page": page,
        "collections": Collection.objects.all(),
        "labels": facets.exclude(label="").values_list("label", flat=True).distinct().order_by("label"),
        "genders": Item.Gender.choices,
        "splits": Item.Split.choices,
        "current": request.GET,
        "query": query.urlencode(),
        "progress": progress if progress and (progress["pending"] or progress["processing"]) else None,
        "collection": collection,
    })


def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Item.objects.with_cover(), pk=pk)
    return render(request, "catalog/item_detail.html", {"item": item})


def stats(request: HttpRequest) -> HttpResponse:
    collection = collection_by_slug(request.GET.get("collection"))
    rows = catalog_stats(collection)
    return render(request, "catalog/stats.html", {
        "rows": rows, "total": sum(r.count for r in rows),
        "collections": Collection.objects.all(), "collection": collection,
    })
