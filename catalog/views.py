"""Catalogue pages."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .lifecycle import image_mark_pending
from .models import Collection, Item
from .selectors import (
    collection_by_slug,
    collection_stats,
    filter_items,
    image_progress,
    images_in_flight,
)

# Query parameters that make the home page a filtered listing (and drop its lead header).
LISTING_PARAMS = ("collection", "label", "gender", "split", "category", "q", "page")

PAGE_SIZE = 24


def item_list(request: HttpRequest) -> HttpResponse:
    items = filter_items(Item.objects.visible().with_cover(), request.GET).order_by("-id")
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    collection = collection_by_slug(request.GET.get("collection"))
    facets = Item.objects.filter(collection=collection) if collection else Item.objects.all()
    progress = image_progress(collection) if images_in_flight(collection) else None
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
        "progress": progress,
        "collection": collection,
        # The home that leads: the three actions and "rate these" above the unfiltered catalogue.
        "lead": not any(request.GET.get(name) for name in LISTING_PARAMS),
    })


def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Item.objects.with_cover(), pk=pk)
    return render(request, "catalog/item_detail.html", {"item": item})


@require_POST
def item_reprocess(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff send an item's images back through the pipeline (the admin action, from the item page)."""
    if not request.user.is_staff:
        raise PermissionDenied("only staff may re-process images")
    item = get_object_or_404(Item, pk=pk)
    count = image_mark_pending(ids=list(item.images.values_list("pk", flat=True)))
    messages.success(request, f"{count} image{'s' if count != 1 else ''} sent back through the pipeline.")
    return redirect(item)


def stats(request: HttpRequest) -> HttpResponse:
    collection = collection_by_slug(request.GET.get("collection"))
    return render(request, "catalog/stats.html", {
        "sections": collection_stats(collection), "collections": Collection.objects.all(), "collection": collection,
    })
