"""Search pages. The photo-search page is a shell: its script posts to the API and draws the results."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from catalog.models import Collection, Item


@ensure_csrf_cookie
def photo_search(request: HttpRequest) -> HttpResponse:
    collections = list(Collection.objects.all())
    slug = request.GET.get("collection")
    current = next((c for c in collections if c.slug == slug), collections[0] if collections else None)
    labels = (Item.objects.filter(collection=current).exclude(label="").values_list("label", flat=True)
              .distinct().order_by("label")) if current else []
    return render(request, "recommender/search/photo_search.html", {
        "collections": collections, "current": current, "labels": labels,
        "genders": Item.Gender.choices, "splits": Item.Split.choices,
        "max_mb": settings.STYLESITE_UPLOAD_MAX_BYTES // (1024 * 1024),
    })
