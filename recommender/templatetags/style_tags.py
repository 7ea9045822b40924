"""``{% style_guess item %}``: the classifier's "looks like: dress 87%" line for item pages."""
from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.urls import reverse

from catalog.models import Item

from ..styles.selectors import item_style_guess

register = template.Library()


@register.inclusion_tag("recommender/styles/_style_guess.html")
def style_guess(item: Item) -> dict:
    """Empty when the collection's classifier has not predicted this item yet."""
    guess = item_style_guess(item)
    if guess is None:
        return {"guess": None}
    query = urlencode({"collection": item.collection.slug, "label": guess.label})
    return {"guess": guess, "item": item, "percent": round(guess.probability * 100),
            "top_url": f"{reverse('catalog:item-list')}?{query}"}
