"""Preference pages: sign-up, the personal feed, the user's likes, the staff respondent table."""
from __future__ import annotations

import csv

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from catalog.models import Collection
from catalog.selectors import collection_by_slug
from stylesite.exceptions import DomainError

from ..models import Vote
from . import selectors
from .fitting import served_name

PAGE_SIZE = 24


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("recommender:for-you")
    form = UserCreationForm(request.POST or None)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        safe = url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure())
        return redirect(next_url if next_url and safe else "recommender:for-you")
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


def _personal_page(request: HttpRequest, template: str, default_k: int, answer_for) -> HttpResponse:
    """The For-you and Rate-next pages: a collection picker, the answer, and who answered."""
    context: dict = {"collections": Collection.objects.all(), "k": default_k}
    try:
        collection = selectors.default_collection(request.user, request.GET.get("collection"))
        context["k"] = selectors.parse_k(request.GET.get("k"), default=default_k)
        answer = answer_for(request.user, collection, context["k"])
        context.update(collection=collection, served=served_name(collection), predictions=answer.predictions,
                       predictor=answer.predictor, n_votes=answer.n_votes,
                       fitted=selectors.predictor_in_use(collection))
    except DomainError as exc:
        context["problem"] = exc.message
    return render(request, template, context)


@login_required
def for_you(request: HttpRequest) -> HttpResponse:
    return _personal_page(request, "recommender/preferences/for_you.html", 24, selectors.feed_answer)


@login_required
def rate_next(request: HttpRequest) -> HttpResponse:
    return _personal_page(request, "recommender/preferences/rate_next.html", 12, selectors.next_to_rate)


@login_required
def my_likes(request: HttpRequest) -> HttpResponse:
    value = request.GET.get("value") if request.GET.get("value") in Vote.Value.values else Vote.Value.LIKE
    votes = selectors.my_votes(request.user, value).prefetch_related("item__images")
    page = Paginator(votes, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "recommender/preferences/my_likes.html", {
        "page": page, "value": value, "query": f"value={value}",
        "counts": {v: selectors.my_votes(request.user, v).count() for v in Vote.Value.values},
    })


@staff_member_required
def respondents(request: HttpRequest) -> HttpResponse:
    slug = request.GET.get("collection")
    collection = collection_by_slug(slug)
    rows = selectors.respondent_table(collection)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="respondents{"-" + slug if collection else ""}.csv"'
        writer = csv.writer(response)
        writer.writerow(["user", "kind", "votes", "train_likes", "train_dislikes", "validation_likes",
                         "validation_dislikes"])
        for r in rows:
            writer.writerow([r.username, r.kind, r.n_votes, " ".join(r.train_likes), " ".join(r.train_dislikes),
                             " ".join(r.validation_likes), " ".join(r.validation_dislikes)])
        return response
    return render(request, "recommender/preferences/respondents.html", {
        "rows": rows, "collections": Collection.objects.all(), "collection": collection,
    })
