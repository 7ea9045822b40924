"""Reads of the catalogue that more than one view, command or API use."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.db.models import Count, QuerySet

from stylesite.exceptions import DomainError, InvalidInput, NotFound

from .models import Collection, ImportJob, ImportRow, Item, ItemImage


def collection_by_slug(slug: str | None, *, required: bool = False,
                       unknown: type[DomainError] = NotFound) -> Collection | None:
    """The collection with this slug; None when no slug was given (InvalidInput if ``required``).

    An unknown slug raises ``unknown``: NotFound (404) where the collection is what is asked for,
    InvalidInput (400) where it is one filter among others (similarity search).
    """
    if not slug:
        if required:
            raise InvalidInput("collection (a slug) is required")
        return None
    collection = Collection.objects.filter(slug=slug).first()
    if collection is None:
        raise unknown(f"no collection with slug {slug!r}")
    return collection


@dataclass(frozen=True)
class StatsRow:
    gender: str
    label: str
    split: str
    count: int


def catalog_stats(collection: Collection | None = None) -> list[StatsRow]:
    """Items by gender × label × split, smallest groups first (a class-balance table)."""
    items: QuerySet[Item] = Item.objects.all()
    if collection is not None:
        items = items.filter(collection=collection)
    rows = items.values("gender", "label", "split").annotate(count=Count("id")).order_by(
        "count", "gender", "label", "split"
    )
    return [StatsRow(r["gender"], r["label"], r["split"], r["count"]) for r in rows]


def image_progress(collection: Collection | None = None) -> dict[str, int]:
    """Pipeline progress of a collection (or of all): images per status, plus those flagged suspect."""
    images = ItemImage.objects.filter(collection=collection) if collection else ItemImage.objects.all()
    counts = dict.fromkeys(ItemImage.Status.values, 0)
    for row in images.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["suspect"] = images.filter(suspect=True).count()
    counts["total"] = sum(counts[s] for s in ItemImage.Status.values)
    return counts


def filter_items(items: QuerySet[Item], params: dict[str, str]) -> QuerySet[Item]:
    """The catalogue's filters, shared by the grid page and the API."""
    if params.get("collection"):
        items = items.filter(collection__slug=params["collection"])
    for name in ("label", "gender", "split", "category"):
        if params.get(name):
            items = items.filter(**{name: params[name]})
    if params.get("q"):
        items = items.filter(title__icontains=params["q"])
    return items


REPORT_COLUMNS = ["row", "image", "outcome", "reason", "item_id"]


def import_report_csv(job: ImportJob) -> str:
    """An import job's per-row report as CSV (row 1 is the CSV's first row after its header)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    writer.writerows(ImportRow.objects.filter(job=job).order_by("row").values_list(*REPORT_COLUMNS))
    return out.getvalue()
