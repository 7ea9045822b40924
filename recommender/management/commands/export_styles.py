from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection
from recommender.styles.selectors import EXPORT_HEADER, export_rows


class Command(BaseCommand):
    help = "Write one CSV row per clustered item: source file, label, cluster index and name, map x and y."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", required=True)
        parser.add_argument("out", type=Path, help="CSV file to write ('-' for standard output).")

    def handle(self, *args, collection: str, out: Path, **options) -> None:
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection with slug {collection!r}")
        handle = self.stdout if str(out) == "-" else out.open("w", newline="", encoding="utf-8")
        count = 0
        try:
            writer = csv.writer(handle)
            writer.writerow(EXPORT_HEADER)
            for row in export_rows(target):
                writer.writerow([row.item_id, row.source_name, row.label, row.cluster_index, row.cluster_name,
                                 f"{row.x:.5f}", f"{row.y:.5f}"])
                count += 1
        finally:
            if handle is not self.stdout:
                handle.close()
        if count == 0:
            self.stderr.write(f"{target.slug} has no clustered items yet; run cluster_styles first")
        if str(out) != "-":
            self.stdout.write(self.style.SUCCESS(f"Wrote {count} row(s) to {out}."))
