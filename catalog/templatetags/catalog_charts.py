"""``{% pivot_bars stats.pivot %}`` and ``{% pipeline_bars stats.pipeline %}``: the statistics page's
bar charts, drawn server-side as inline SVG (no script, works offline)."""
from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from ml.plots import stacked_bars_svg

from ..models import Item, ItemImage
from ..selectors import PipelineState, Pivot

register = template.Library()

GENDERS = dict(Item.Gender.choices)
SPLITS = dict(Item.Split.choices)
# Ready, then the waiting states, then failed: the colours of ml.plots.BAR_COLOURS in that order.
PIPELINE_ORDER = (ItemImage.Status.READY, ItemImage.Status.PENDING, ItemImage.Status.PROCESSING,
                  ItemImage.Status.FAILED)
PIPELINE_COLOURS = ("#2b8a3e", "#f08c00", "#fab005", "#c92a2a")


def row_name(label: str, gender: str) -> str:
    """ "dress · Women", "dress" without a gender, "(no label)" without a label."""
    name = label or "(no label)"
    return f"{name} · {GENDERS.get(gender, gender)}" if gender else name


@register.simple_tag
def pivot_bars(pivot: Pivot) -> SafeString:
    """One bar per label × gender row, largest first, stacked by split, all on one scale."""
    rows = [(row_name(r.label, r.gender), [r.counts[s] for s in pivot.splits])
            for r in sorted(pivot.rows, key=lambda r: -r.total)]
    svg = stacked_bars_svg(rows, [str(SPLITS[s]) for s in pivot.splits], title="items per label and gender, by split")
    return mark_safe(svg)  # noqa: S308 - stacked_bars_svg escapes every name


@register.simple_tag
def pipeline_bars(pipeline: PipelineState) -> SafeString:
    """The collection's images as one bar stacked by pipeline status."""
    counts = [getattr(pipeline, status) for status in PIPELINE_ORDER]
    svg = stacked_bars_svg([("images", counts)], [ItemImage.Status(s).label for s in PIPELINE_ORDER],
                           title="images by pipeline status", colours=PIPELINE_COLOURS)
    return mark_safe(svg)  # noqa: S308 - stacked_bars_svg escapes every name


@register.filter
def gender_name(code: str) -> str:
    return str(GENDERS.get(code, code)) or "–"
