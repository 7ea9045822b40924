from __future__ import annotations

import math

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection
from recommender.preferences.fitting import PREDICTORS
from recommender.preferences.services import preferences_evaluate
from stylesite.exceptions import DomainError

REFERENCE_ACCURACY = 0.776
COLUMNS = [("accuracy_at_zero", "acc@0"), ("accuracy_at_roc", "acc@ROC"), ("accuracy_at_half", "acc@P.5"),
           ("auc", "AUC"), ("mean_user_auc", "user AUC"), ("unsure_share", "unsure"),
           ("accuracy_decided", "acc decided"), ("brier", "Brier"), ("fit_seconds", "fit s")]


def served_accuracy(name: str) -> str:
    """The accuracy of the rule the web app serves: item_cf's ROC threshold, else P(like) > 0.5."""
    return "accuracy_at_roc" if name == "item_cf" else "accuracy_at_half"


class Command(BaseCommand):
    help = ("Fit every predictor on the train votes and score the held-out ones (stored split, else a per-user "
            "stratified hold-out); print the table, save the report with ROC curves, serve the best.")

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
        self.stdout.write(f"{'predictor':10s}" + "".join(f"{label:>12s}" for _, label in COLUMNS))
        for name, values in report.results.items():
            self.stdout.write(f"{name:10s}" + "".join(f"{values.get(key, math.nan):12.3f}" for key, _ in COLUMNS))
        best, base = report.results[report.best], report.results.get("item_cf")
        if base is not None:
            self.stdout.write(f"best: {report.best}, AUC {best['auc']:.3f} vs item_cf {base['auc']:.3f} "
                              f"({best['auc'] - base['auc']:+.3f}); accuracy at the served threshold "
                              f"{best[served_accuracy(report.best)]:.1%} (item_cf at its ROC threshold "
                              f"{base['accuracy_at_roc']:.1%}); reference study {REFERENCE_ACCURACY:.1%} on its survey")
        self.stdout.write(f"report #{report.pk} saved{'' if no_serve else f'; serving {report.best}'}")
