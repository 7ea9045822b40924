from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Collection
from recommender.styles.similarity import similarity_run
from stylesite.exceptions import NotReady


class Command(BaseCommand):
    help = ("Learn a similarity space from the collection's labels (refitted only when labels or vectors "
            "changed), fill its vectors, and with --activate switch the collection's searches to it.")

    def add_arguments(self, parser) -> None:
        from ml.similarity import DEFAULT_KINDS, KINDS

        parser.add_argument("--collection", required=True, help="Collection slug.")
        parser.add_argument("--activate", action="store_true")
        parser.add_argument("--kind", action="append", choices=KINDS, default=[],
                            help=f"Head kind to try (repeatable; default: {', '.join(DEFAULT_KINDS)}); "
                                 "the best validation P@10 of the served space is kept.")

    def handle(self, *args, collection: str, activate: bool, kind: list[str], **options) -> None:
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection with slug {collection!r}")
        bar = tqdm(total=100, desc="Similarity", unit="%", file=self.stderr, disable=options["verbosity"] == 0)

        def progress(fraction: float, message: str) -> None:
            bar.n = round(100 * fraction)
            bar.set_postfix_str(message[:60])

        try:
            result = similarity_run(target, activate=activate, kinds=tuple(kind) or None, progress=progress)
        except (NotReady, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self.stdout.write(
            f"{target.slug}: {'fitted' if result['retrained'] else 'reused'} head v{result['version']} "
            f"({result['kind']}, raw weight {result['weight']:g}, validation P@10 {result['validation_p@10']}); "
            f"{result['images']} image(s) in {result['model']}.")
        if result["kept_raw"]:
            self.stdout.write("The learned space gained less than one standard error of validation P@10 over the "
                              "raw vectors, so the raw vectors are served.")
        if result["activated"]:
            self.stdout.write(self.style.SUCCESS(f"{target.slug} now searches {result['model']}."))
