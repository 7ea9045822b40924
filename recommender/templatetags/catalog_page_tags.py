"""Recommender's blocks in catalogue page slots (registered in ``recommender.apps``):
``{% item_embeddings item %}``, ``{% rate_these %}`` and ``{% vote_stats_block collection %}``."""
from __future__ import annotations

from django import template
from django.utils.safestring import mark_safe

from catalog.models import Collection, Item

from ..embeddings import active_model_or_none
from ..models import Embedding
from ..preferences.selectors import items_to_rate
from ..preferences.vote_stats import vote_stats

register = template.Library()

RATE_THESE = 4


@register.inclusion_tag("recommender/embeddings/_item_embeddings.html")
def item_embeddings(item: Item) -> dict:
    """The models that embedded the item's cover image, the one its collection searches with marked."""
    cover = item.cover
    rows = list(Embedding.objects.filter(image=cover).select_related("model").order_by("model__name")) if cover else []
    active = active_model_or_none(item.collection)
    return {"image": cover, "models": [(row.model, active is not None and row.model_id == active.pk) for row in rows],
            "active": active}


@register.inclusion_tag("recommender/preferences/_rate_these.html", takes_context=True)
def rate_these(context: template.Context) -> dict:
    """A few cards the signed-in user has not rated yet, least rated first; nothing for visitors."""
    request = context.get("request")
    user = getattr(request, "user", None)
    items = items_to_rate(user, RATE_THESE) if user is not None and user.is_authenticated else []
    return {"items": items, "request": request, "user": user, "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("recommender/preferences/_vote_stats.html")
def vote_stats_block(collection: Collection) -> dict:
    """Votes per label of ``collection`` with a bar chart (likes and dislikes stacked)."""
    from ml.plots import stacked_bars_svg

    stats = vote_stats(collection)
    svg = stacked_bars_svg([(v.label or "(no label)", [v.likes, v.dislikes]) for v in stats.labels],
                           ["likes", "dislikes"], title="votes per label", colours=("#2b8a3e", "#c92a2a"))
    return {"stats": stats, "chart": mark_safe(svg)}  # noqa: S308 - stacked_bars_svg escapes every name
