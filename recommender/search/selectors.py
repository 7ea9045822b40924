"""Reads for similarity search: look-alikes of an item and neighbours of any query vector."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from catalog.models import Collection, Item
from catalog.selectors import collection_by_slug
from stylesite.exceptions import InvalidInput, NotFound, NotReady
from stylesite.params import parse_int

from ..embeddings import active_model
from ..models import Embedding, EmbeddingModel
from ..models.embeddings import ItemVector, NearestFilters, Query

MAX_K = 100
DEFAULT_K = 12


@dataclass(frozen=True)
class SearchParams:
    """Validated request parameters shared by the item page, the item API and photo search."""

    k: int = DEFAULT_K
    collection: Collection | None = None
    label: str = ""
    gender: str = ""
    split: str = ""


@dataclass(frozen=True)
class Match:
    item: Item
    score: float
    space: str = "raw"  # which space ranked it: "raw" backbone vectors or a "learned" similarity space


def space_of(model: EmbeddingModel) -> str:
    """ "learned" for a backbone composed with a similarity head (``ml.similarity``), else "raw"."""
    from ml.similarity import is_head_model

    return "learned" if is_head_model(model.name) else "raw"


def search_params(params: Mapping[str, str]) -> SearchParams:
    """Parse ``k``, ``collection`` (slug), ``label``, ``gender``, ``split``; InvalidInput with a reason."""
    k = parse_int(params.get("k"), name="k", default=DEFAULT_K, minimum=1, maximum=MAX_K)
    collection = collection_by_slug(params.get("collection"), unknown=InvalidInput)
    gender = params.get("gender") or ""
    if gender and gender not in Item.Gender.values:
        raise InvalidInput(f"gender must be one of {', '.join(Item.Gender.values)}")
    split = params.get("split") or ""
    if split and split not in Item.Split.values:
        raise InvalidInput(f"split must be one of {', '.join(Item.Split.values)}")
    return SearchParams(k=k, collection=collection, label=params.get("label") or "",
                        gender=gender, split=split)


def nearest_items(query: Query, model: EmbeddingModel, params: SearchParams, *,
                  collection: Collection, exclude_item_id: int | None = None) -> list[Match]:
    """The ``params.k`` closest items of ``collection`` under ``model``, with their collection and images
    loaded (one statement: ``Embedding.objects.nearest_items``)."""
    filters = NearestFilters(collection_id=collection.pk, label=params.label, gender=params.gender,
                             split=params.split, exclude_item_id=exclude_item_id)
    space = space_of(model)
    matches = []
    for item, score in Embedding.objects.nearest_items(query, params.k, filters, model=model):
        item.collection = collection
        matches.append(Match(item, score, space))
    return matches


def similar_items(item: Item, params: SearchParams) -> list[Match]:
    """Items that look most like ``item`` (itself and its other images excluded).

    Searches ``params.collection`` (default: the item's own) with that collection's active model;
    the query is the item's own vector under that model, read by Postgres inside the search (it
    never travels to Python and back). Without one (the pipeline has not processed the item yet)
    the search finds nothing and ``NotReady`` says why.
    """
    collection = params.collection or item.collection
    model = active_model(collection)
    matches = nearest_items(ItemVector(item.pk), model, params, collection=collection, exclude_item_id=item.pk)
    if not matches and not Embedding.objects.filter(item=item, model=model).exists():
        raise NotReady(f"“{item.title}” has no embedding under {model} yet; its image may still be processing")
    return matches


def item_for_search(pk: int) -> Item:
    item = Item.objects.select_related("collection").filter(pk=pk).first()
    if item is None:
        raise NotFound(f"no item {pk}")
    return item


def facets(matches: list[Match]) -> dict[str, list[dict[str, str | int]]]:
    """Label and gender counts among the results, most common first (the page's filter hints)."""
    out: dict[str, list[dict[str, str | int]]] = {}
    for field in ("label", "gender"):
        counts = Counter(getattr(m.item, field) for m in matches if getattr(m.item, field))
        out[field] = [{"value": value, "count": n} for value, n in
                      sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return out
