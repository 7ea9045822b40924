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
class PivotRow:
    label: str
    gender: str
    counts: dict[str, int]  # items per split, every split of the pivot present
    total: int


@dataclass(frozen=True)
class Pivot:
    """Items as label × gender rows with a column per split, and the totals of both."""

    splits: list[str]
    rows: list[PivotRow]
    column_totals: dict[str, int]
    total: int


@dataclass(frozen=True)
class LabelShare:
    label: str
    count: int
    share: float  # of the collection's items


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int


@dataclass(frozen=True)
class PipelineState:
    """Images per pipeline status, the suspect cut-outs among them, and why the failed ones failed."""

    pending: int
    processing: int
    ready: int
    failed: int
    suspect: int
    total: int
    failed_reasons: list[ReasonCount]


@dataclass(frozen=True)
class CollectionStats:
    collection: Collection
    pivot: Pivot
    labels: list[LabelShare]  # largest first
    imbalance_ratio: float | None  # largest label over smallest; None with fewer than two labels
    pipeline: PipelineState


# Failed images are grouped by the start of their reason, before details such as a file name.
REASON_LENGTH = 80


def reason_group(error: str) -> str:
    """The part of a failure reason shared by images that failed the same way.

    "cannot decode: broken data stream when reading image file" and "internal error:
    ValueError: …" group on their first line up to ``REASON_LENGTH`` characters.
    """
    line = (error.strip().splitlines() or ["(no reason given)"])[0].strip()
    return line if len(line) <= REASON_LENGTH else line[:REASON_LENGTH - 1] + "…"


def _pivot(counts: list[dict]) -> Pivot:
    present = {c["split"] for c in counts}
    splits = [s for s in Item.Split.values if s in present]
    by_row: dict[tuple[str, str], dict[str, int]] = {}
    for c in counts:
        row = by_row.setdefault((c["label"], c["gender"]), dict.fromkeys(splits, 0))
        row[c["split"]] = c["n"]
    rows = [PivotRow(label, gender, per_split, sum(per_split.values()))
            for (label, gender), per_split in by_row.items()]
    rows.sort(key=lambda r: (r.label == "", r.label, r.gender))
    column_totals = {s: sum(r.counts[s] for r in rows) for s in splits}
    return Pivot(splits, rows, column_totals, sum(column_totals.values()))


def _label_shares(pivot: Pivot) -> tuple[list[LabelShare], float | None]:
    per_label: dict[str, int] = {}
    for row in pivot.rows:
        per_label[row.label] = per_label.get(row.label, 0) + row.total
    shares = [LabelShare(label, n, n / pivot.total) for label, n in
              sorted(per_label.items(), key=lambda kv: (-kv[1], kv[0]))]
    ratio = shares[0].count / shares[-1].count if len(shares) > 1 else None
    return shares, ratio


def _pipeline(images: QuerySet[ItemImage]) -> PipelineState:
    reasons: dict[str, int] = {}
    for error in images.filter(status=ItemImage.Status.FAILED).values_list("error", flat=True).iterator():
        group = reason_group(error)
        reasons[group] = reasons.get(group, 0) + 1
    return PipelineState(
        **_status_counts(images),
        failed_reasons=[ReasonCount(r, n) for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))],
    )


def collection_stats(collection: Collection | None = None) -> list[CollectionStats]:
    """Per collection (or for ``collection`` alone): the label × gender × split pivot, label shares
    with the imbalance ratio, and the pipeline state of its images. Collections by name."""
    collections = [collection] if collection is not None else list(Collection.objects.order_by("name"))
    counts: dict[int, list[dict]] = {c.pk: [] for c in collections}
    rows = (Item.objects.filter(collection__in=collections)
            .values("collection_id", "label", "gender", "split").annotate(n=Count("id")))
    for row in rows:
        counts[row["collection_id"]].append(row)
    out = []
    for c in collections:
        pivot = _pivot(counts[c.pk])
        labels, ratio = _label_shares(pivot)
        out.append(CollectionStats(c, pivot, labels, ratio, _pipeline(ItemImage.objects.filter(collection=c))))
    return out


def _status_counts(images: QuerySet[ItemImage]) -> dict[str, int]:
    """Images per status (every status present), plus ``suspect`` and ``total``."""
    counts = dict.fromkeys(ItemImage.Status.values, 0)
    for row in images.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["suspect"] = images.filter(suspect=True).count()
    counts["total"] = sum(counts[s] for s in ItemImage.Status.values)
    return counts


def images_in_flight(collection: Collection | None = None) -> bool:
    """Whether any image (of the collection) is pending or processing: one lookup on the status index,
    so a page counts the pipeline's states only while it has work (a full count costs ~0.1 s at 100k)."""
    images = ItemImage.objects.filter(status__in=[ItemImage.Status.PENDING, ItemImage.Status.PROCESSING])
    return (images.filter(collection=collection) if collection else images).exists()


def image_progress(collection: Collection | None = None) -> dict[str, int]:
    """Pipeline progress of a collection (or of all): images per status, plus those flagged suspect."""
    return _status_counts(ItemImage.objects.filter(collection=collection) if collection else ItemImage.objects.all())


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
