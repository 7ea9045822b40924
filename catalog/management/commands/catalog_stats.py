from django.core.management.base import BaseCommand, CommandError

from catalog.hooks import StatsTable, stats_tables
from catalog.models import Collection
from catalog.selectors import CollectionStats, collection_stats
from catalog.templatetags.catalog_charts import gender_name


def table_lines(table: StatsTable) -> list[str]:
    """A text table: the first column left-aligned, the others right-aligned, each as wide as its widest cell."""
    cells = [table.columns] + [[f"{v:.1f}" if isinstance(v, float) else str(v) for v in row] for row in table.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    lines = [table.title]
    for row in cells:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return lines


def catalog_tables(stats: CollectionStats) -> list[StatsTable]:
    """The statistics page's figures for one collection, as text tables."""
    pivot, p = stats.pivot, stats.pipeline
    pivot_rows: list[list] = [[r.label or "(no label)", gender_name(r.gender), *r.counts.values(), r.total]
                              for r in pivot.rows]
    pivot_rows.append(["total", "", *pivot.column_totals.values(), pivot.total])
    ratio = f"{stats.imbalance_ratio:.1f}x" if stats.imbalance_ratio else "-"
    return [
        StatsTable("items by label × gender × split", ["label", "gender", *pivot.splits, "total"], pivot_rows),
        StatsTable(f"labels, largest first (largest / smallest: {ratio})", ["label", "items", "share %"],
                   [[s.label or "(no label)", s.count, round(100 * s.share, 1)] for s in stats.labels]),
        StatsTable("image pipeline", ["status", "images"],
                   [["ready", p.ready], ["pending", p.pending], ["processing", p.processing],
                    ["failed", p.failed], ["suspect", p.suspect], ["total", p.total]]),
        StatsTable("why images failed", ["reason", "images"], [[r.reason, r.count] for r in p.failed_reasons]),
    ]


class Command(BaseCommand):
    help = ("Print, per collection, the statistics page's figures: items as label × gender × split with totals, "
            "label shares, the image pipeline's state and failure reasons, and other apps' tables (votes).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", help="Collection slug (default: all collections).")

    def handle(self, *args, collection: str | None = None, **options) -> None:
        target = None
        if collection:
            target = Collection.objects.filter(slug=collection).first()
            if target is None:
                raise CommandError(f"no collection with slug {collection!r}")
        for stats in collection_stats(target):
            self.stdout.write(f"== {stats.collection.name} ({stats.collection.slug})")
            for table in [*catalog_tables(stats), *stats_tables(stats.collection)]:
                if table.rows:
                    self.stdout.write("\n".join(table_lines(table)) + "\n")
