"""``{% slot "name" %}``: render what other apps registered for a catalogue page slot (see ``catalog.hooks``)."""
from __future__ import annotations

from django import template
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

from ..hooks import slot_templates

register = template.Library()


@register.simple_tag(takes_context=True)
def slot(context: template.Context, name: str) -> SafeString:
    request = context.get("request")
    flat = context.flatten()
    return mark_safe("".join(get_template(t).render(flat, request) for t in slot_templates(name)))
