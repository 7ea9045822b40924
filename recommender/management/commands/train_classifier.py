from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection
from recommender.models import StyleJob
from recommender.styles.jobs import style_job_run
from recommender.styles.selectors import classifier_of


class Command(BaseCommand):
    help = ("Train the style classifier head on the active embeddings (skipped when labels and vectors "
            "are unchanged), refresh predictions and curation lists, and print the reports.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", required=True)

    def handle(self, *args, collection: str, **options) -> None:
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection with slug {collection!r}")
        job = StyleJob.objects.create(collection=target, kind=StyleJob.Kind.CLASSIFY)
        if style_job_run(job.pk) != StyleJob.Status.DONE:
            job.refresh_from_db()
            raise CommandError(f"training failed: {job.error}")
        job.refresh_from_db()
        classifier = classifier_of(target)
        result = job.result
        self.stdout.write(f"classifier v{classifier.version} ({classifier.kind}) on {classifier.model}: "
                          f"{'retrained' if result['retrained'] else 'unchanged inputs, not retrained'}")
        self.stdout.write("candidates (validation):")
        for c in classifier.candidates:
            params = " ".join(f"{k}={v}" for k, v in c["params"].items())
            self.stdout.write(f"  {c['kind']:<7} {params:<12} accuracy {c['val_accuracy']:.4f}  "
                              f"macro F1 {c['val_macro_f1']:.4f}")
        for name, report in (("validation", classifier.validation), ("test", classifier.test)):
            if not report.get("n"):
                self.stdout.write(f"{name}: no labelled items")
                continue
            self.stdout.write(f"{name}: n={report['n']} accuracy {report['accuracy']:.4f} "
                              f"macro F1 {report['macro_f1']:.4f}")
            self.stdout.write(f"  {'label':<12} {'acc':>6} {'prec':>6} {'f1':>6} {'n':>5}")
            for m in report["per_class"]:
                self.stdout.write(f"  {m['label']:<12} {m['recall']:>6.3f} {m['precision']:>6.3f} {m['f1']:>6.3f} "
                                  f"{m['support']:>5}")
        self.stdout.write(self.style.SUCCESS(
            f"predictions for {result['predictions']} items; {result['duplicate_pairs']} near-duplicate pair(s)."))
