from __future__ import annotations

import math

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection
from ml.preferences import PREDICTORS
from recommender.preferences.services import preferences_evaluate
from stylesite.exceptions import DomainError

REFERENCE_ACCURACY = 0.776
COLUMNS = [("mean_user_auc", "user AUC"), ("mean_user_auc_lo", "CI low"), ("mean_user_auc_hi", "CI high"),
           ("auc", "pooled AUC"), ("accuracy_at_half", "acc@P.5"), ("accuracy_decided", "acc decided"),
           ("unsure_share", "unsure"), ("brier", "Brier"), ("fit_seconds", "fit s")]


class Command(BaseCommand):
    help = ("Choose the predictor to serve on validation folds of the train votes (a learned one only if it beats "
            "the best baseline); fit every predictor on the train votes and score the held-out ones (stored split, "
            "else a per-user stratified hold-out); print the table per predictor and per simulated taste family, "
            "save the report with ROC curves, serve the chosen one.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", required=True)
        parser.add_argument("--min-votes", type=int, default=5)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--predictors", nargs="+", choices=PREDICTORS, default=list(PREDICTORS))
        parser.add_argument("--no-serve", action="store_true", help="Do not change the served predictor.")

    def handle(self, *args, collection: str, min_votes: int, seed: int, predictors: list[str], no_serve: bool,
               **options) -> None:
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"No collection '{collection}'.")
        try:
            report = preferences_evaluate(target, min_votes=min_votes, seed=seed, predictors=tuple(predictors),
                                          serve=not no_serve)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{collection}: split {report.split}; {report.n_users} users, {report.n_votes} held-out "
                          f"votes ({report.dropped_duplicates} dropped as near-duplicates of train images)")
        self.stdout.write("test votes (user AUC: mean per-user ROC AUC with its 95 % bootstrap interval over users; "
                          "acc decided / unsure: the predictor's own unsure band)")
        self.stdout.write(f"{'predictor':12s}" + "".join(f"{label:>12s}" for _, label in COLUMNS) + f"{'val AUC':>12s}")
        for name, values in report.results.items():
            self.stdout.write(f"{name:12s}" + "".join(f"{values.get(key, math.nan):12.3f}" for key, _ in COLUMNS)
                              + f"{report.validation.get(name, math.nan):12.3f}")
        if report.families:
            names = sorted({f for per in report.families.values() for f in per})
            self.stdout.write("mean per-user test AUC per simulated taste family")
            self.stdout.write(f"{'predictor':12s}" + "".join(f"{f:>12s}" for f in names))
            for name, per in report.families.items():
                self.stdout.write(f"{name:12s}" + "".join(f"{per.get(f, math.nan):12.3f}" for f in names))
        served = report.results[report.best]
        self.stdout.write(f"served: {report.best} - {report.served_reason}")
        self.stdout.write(f"{report.best} on the test votes: mean user AUC {served['mean_user_auc']:.3f}, accuracy where "
                          f"decided {served['accuracy_decided']:.1%} with {served['unsure_share']:.1%} unsure "
                          f"(reference study {REFERENCE_ACCURACY:.1%} on its survey)")
        self.stdout.write(f"report #{report.pk} saved{'' if no_serve else f'; serving {report.best}'}")
