from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection
from recommender.preferences.services import (
    parse_votes_csv,
    parse_votes_json_dir,
    votes_import,
)
from stylesite.exceptions import DomainError


class Command(BaseCommand):
    help = ("Import survey votes: a CSV (respondent_id, image or item_id, vote, [split]) or a folder of "
            "per-response JSON files (R_id and Q5 at any depth; split from the parent folder). Idempotent.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--collection", required=True, help="Slug of the collection the images belong to.")

    def handle(self, *args, path: Path, collection: str, **options) -> None:
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"No collection '{collection}'.")
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        rows = parse_votes_json_dir(path) if path.is_dir() else parse_votes_csv(path)
        try:
            result = votes_import(rows, target)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{result.created} votes created, {result.changed} changed, {result.unchanged} unchanged.")
        for label, problems in (("unknown image", result.unknown), ("unreadable row", result.invalid)):
            if problems:
                self.stdout.write(self.style.WARNING(f"{len(problems)} {label}{'s' if len(problems) > 1 else ''} "
                                                     f"skipped:"))
                for line in problems[:50]:
                    self.stdout.write(f"  {line}")
                if len(problems) > 50:
                    self.stdout.write(f"  … and {len(problems) - 50} more")
