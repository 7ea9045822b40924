"""Like/dislike buttons for an item: ``{% load preference_tags %}{% vote_buttons item %}``."""
from __future__ import annotations

from django import template

from ..models import Vote

register = template.Library()


@register.inclusion_tag("recommender/preferences/_vote_buttons.html", takes_context=True)
def vote_buttons(context: template.Context, item) -> dict:
    """The buttons, pressed where the user voted. The user's votes are read once per request
    (one small query however many cards a page shows), and the script is emitted once."""
    request = context.get("request")
    user = getattr(request, "user", None)
    current = None
    first = False
    if user is not None and user.is_authenticated:
        votes = getattr(request, "_preference_votes", None)
        if votes is None:
            votes = dict(Vote.objects.filter(user=user).values_list("item_id", "value"))
            request._preference_votes = votes
        current = votes.get(item.pk)
    if request is not None and not getattr(request, "_preference_script", False):
        request._preference_script = first = True
    return {"item": item, "current": current, "user": user, "request": request,
            "include_script": first, "csrf_token": context.get("csrf_token")}
