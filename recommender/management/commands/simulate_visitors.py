from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection
from recommender.preferences.services import visitors_simulate
from stylesite.exceptions import DomainError


class Command(BaseCommand):
    help = ("Create simulated visitors (users 'sim-…-<family>', marked simulated) of five taste families "
            "(category, colour, pattern, mixed, drifting): noisy train votes (10 % flipped, like-rates 15-60 %) and "
            "their true taste on other items as validation votes. "
            "Idempotent: a collection already simulated (same seed) is left alone unless --replace.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", required=True)
        parser.add_argument("--users", type=int, default=100)
        parser.add_argument("--votes", type=int, default=60, help="Votes per simulated visitor.")
        parser.add_argument("--test-items", type=int, default=40,
                            help="Other items each visitor answers with their true taste (validation votes).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--replace", action="store_true",
                            help="Delete this simulation's votes and vote again (e.g. once embeddings exist).")

    def handle(self, *args, collection: str, users: int, votes: int, seed: int, replace: bool, test_items: int,
               **options) -> None:
        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            self.stdout.write(self.style.WARNING(f"No collection '{collection}': no simulated visitors."))
            return
        if users < 2 or votes < 2 or test_items < 0:
            raise CommandError("--users and --votes must be at least 2, --test-items at least 0.")
        try:
            result = visitors_simulate(target, users, votes, seed=seed, replace=replace, test_items=test_items)
        except DomainError as exc:
            self.stdout.write(self.style.WARNING(exc.message))
            return
        if not result.created:
            self.stdout.write(f"Simulated visitors exist: {result.users} users, {result.votes} votes "
                              f"(use --replace to vote again).")
        else:
            self.stdout.write(f"Simulated {result.users} visitors, {result.votes} votes on '{collection}' "
                              f"(tastes from {result.features}).")
