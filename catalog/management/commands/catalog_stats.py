from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection
from catalog.selectors import catalog_stats


class Command(BaseCommand):
    help = "Print items by gender × label × split, smallest groups first."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", help="Collection slug (default: all collections).")

    def handle(self, *args, collection: str | None = None, **options) -> None:
        target = None
        if collection:
            target = Collection.objects.filter(slug=collection).first()
            if target is None:
                raise CommandError(f"no collection with slug {collection!r}")
        rows = catalog_stats(target)
        self.stdout.write(f"{'gender':<8}{'label':<24}{'split':<12}{'items':>7}")
        for row in rows:
            self.stdout.write(f"{row.gender or '-':<8}{row.label or '-':<24}{row.split:<12}{row.count:>7}")
        self.stdout.write(f"{'':<44}{sum(r.count for r in rows):>7} total")
