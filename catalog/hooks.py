"""Slots in catalogue pages that other apps fill, so catalog renders on its own and names no other app.

An app registers a template for a slot when it is ready (``slot_register("item_card", "…html")``);
``{% load catalog_slots %}{% slot "item_card" %}`` renders every template registered for that
slot with the page's context, in registration order, and nothing when none is.

``manage.py catalog_stats`` has the same kind of opening for text: an app registers a function
that turns a collection into a ``StatsTable`` (``stats_table_register``), printed after catalog's own.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Collection

# The slots catalogue pages offer: the foot of a grid card, the item page's actions, facts about
# its image (<dt>/<dd> pairs in its <dl>), what follows its details; the home page's lead actions
# (links beside "Find look-alikes") and what follows its lead, above the catalogue; each
# collection's section of the statistics page (its context has ``stats``, a
# ``catalog.selectors.CollectionStats``).
SLOTS = ("item_card", "item_actions", "item_image_facts", "item_below", "home_actions", "home_top",
         "stats_collection")

_templates: dict[str, list[str]] = defaultdict(list)


def slot_register(slot: str, template_name: str) -> None:
    """Add ``template_name`` to ``slot`` (once; registering again changes nothing)."""
    if slot not in SLOTS:
        raise ValueError(f"unknown slot {slot!r}; catalogue pages offer {', '.join(SLOTS)}")
    if template_name not in _templates[slot]:
        _templates[slot].append(template_name)


def slot_templates(slot: str) -> list[str]:
    return list(_templates.get(slot, ()))


@dataclass(frozen=True)
class StatsTable:
    """A titled text table another app adds to ``manage.py catalog_stats`` for one collection."""

    title: str
    columns: list[str]
    rows: list[list[str | int | float]]


StatsTableProvider = Callable[["Collection"], StatsTable]
_stats_tables: list[StatsTableProvider] = []


def stats_table_register(provider: StatsTableProvider) -> None:
    """Add a table to ``catalog_stats`` (once; registering again changes nothing)."""
    if provider not in _stats_tables:
        _stats_tables.append(provider)


def stats_tables(collection: Collection) -> list[StatsTable]:
    return [provider(collection) for provider in _stats_tables]
