"""The jobs page (staff): queues, each collection's images by pipeline state, failures and a retry."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from catalog.models import Collection

from . import selectors, services


@staff_member_required
def jobs(request: HttpRequest) -> HttpResponse:
    return render(request, "recommender/pipeline/jobs.html", {
        "queues": selectors.queue_states(), "collections": selectors.collection_jobs(),
        "window_minutes": int(selectors.THROUGHPUT_WINDOW.total_seconds() // 60),
    })


@staff_member_required
@require_POST
def jobs_retry(request: HttpRequest, slug: str) -> HttpResponse:
    collection = get_object_or_404(Collection, slug=slug)
    count = services.failed_images_retry(collection)
    messages.success(request, f"{count} failed image(s) of {collection.name} sent through the pipeline again.")
    return redirect("recommender:jobs")
