from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.importers import LAYOUT_HELP, LAYOUTS, ImportRecord
from catalog.models import Collection, ImportRow
from catalog.services import collection_create, records_import


class Command(BaseCommand):
    help = "Import images into a collection (idempotent: a file already imported is skipped)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="Folder (folders, kfashion) or CSV file (csv).")
        parser.add_argument("--collection", required=True, help="Collection slug; created when missing.")
        parser.add_argument("--layout", choices=sorted(LAYOUTS), default="folders")
        parser.add_argument("--kind", choices=Collection.Kind.values, default=Collection.Kind.FASHION,
                            help="Kind of a new collection.")
        parser.add_argument("--name", default="", help="Name of a new collection (default: the slug).")
        parser.add_argument("--limit-per-label", type=int, default=0,
                            help="Import at most N files per (split, label); 0 = all.")

    def handle(self, *args, path: Path, collection: str, layout: str, kind: str, name: str,
               limit_per_label: int, **options) -> None:
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        try:
            records = list(LAYOUTS[layout](path))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not records:
            raise CommandError(f"{path} holds no importable file. The {layout} layout expects "
                               f"{LAYOUT_HELP[layout]}.")
        target = Collection.objects.filter(slug=collection).first() or collection_create(
            name=name or collection.replace("-", " ").title(), slug=collection, kind=kind
        )
        if limit_per_label:
            records = _limit(records, limit_per_label)
        counts: Counter[str] = Counter()
        rejected: list[tuple[Path, str]] = []
        bar = tqdm(total=len(records), desc=f"Importing into {target.slug}", unit="file", file=self.stderr,
                   disable=options["verbosity"] == 0)

        def report(_index: int, record: ImportRecord, outcome: str, reason: str, _item) -> None:
            counts[outcome] += 1
            if outcome == ImportRow.Outcome.REJECTED:
                rejected.append((record.path, reason))
            bar.update()

        records_import(target, records, report)
        bar.close()
        self.stdout.write(self.style.SUCCESS(
            f"Imported {counts['imported']}, skipped {counts['duplicate']} as duplicate, "
            f"rejected {counts['rejected']} into collection {target.slug!r}."
        ))
        for file_path, reason in rejected:
            self.stdout.write(f"  rejected {file_path}: {reason}")


def _limit(records: list[ImportRecord], per_label: int) -> list[ImportRecord]:
    seen: Counter[tuple[str, str]] = Counter()
    kept = []
    for record in records:
        key = (record.split, record.label)
        if seen[key] < per_label:
            seen[key] += 1
            kept.append(record)
    return kept
