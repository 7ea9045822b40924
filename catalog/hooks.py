"""Slots in catalogue pages that other apps fill, so catalog renders on its own and names no other app.

An app registers a template for a slot when it is ready (``slot_register("item_card", "…html")``);
``{% load catalog_slots %}{% slot "item_card" %}`` renders every template registered for that
slot with the page's context, in registration order, and nothing when none is.
"""
from __future__ import annotations

from collections import defaultdict

# The slots catalogue pages offer: the foot of a grid card, the item page's actions and what
# follows the item page's details.
SLOTS = ("item_card", "item_actions", "item_below")

_templates: dict[str, list[str]] = defaultdict(list)


def slot_register(slot: str, template_name: str) -> None:
    """Add ``template_name`` to ``slot`` (once; registering again changes nothing)."""
    if slot not in SLOTS:
        raise ValueError(f"unknown slot {slot!r}; catalogue pages offer {', '.join(SLOTS)}")
    if template_name not in _templates[slot]:
        _templates[slot].append(template_name)


def slot_templates(slot: str) -> list[str]:
    return list(_templates.get(slot, ()))
