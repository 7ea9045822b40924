"""``{% looks_like item %}``: the item page's grid of look-alikes, so catalogue views stay unchanged."""
from __future__ import annotations

import logging

from django import template

from catalog.models import Item
from stylesite.exceptions import DomainError

from ..embeddings import active_model_or_none
from ..search.selectors import DEFAULT_K, SearchParams, similar_items

register = template.Library()
log = logging.getLogger(__name__)


@register.inclusion_tag("recommender/search/_looks_like_grid.html", takes_context=True)
def looks_like(context: template.Context, item: Item, k: int = DEFAULT_K) -> dict:
    """The top ``k`` look-alikes in the item's collection, or a note saying why there are none, and
    the space (embedding model) that answered: the collection's active model."""
    from ml.embedders import UnknownModel, WeightsMissing

    try:
        matches = similar_items(item, SearchParams(k=k))
        note = "" if matches else "No other item of this collection has been embedded yet."
    except DomainError as exc:
        matches, note = [], exc.message
    except (UnknownModel, WeightsMissing) as exc:
        log.warning("look-alikes of item %s unavailable: %s", item.pk, exc)
        matches, note = [], "Look-alikes are unavailable: the collection's embedding model is not installed."
    # The cards' own slots (vote buttons) need the page's request, user and CSRF token.
    return {"item": item, "matches": matches, "note": note, "space": active_model_or_none(item.collection),
            "request": context.get("request"), "user": context.get("user"), "csrf_token": context.get("csrf_token")}
