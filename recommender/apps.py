from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig

# The areas of the recommender app, each a package with its own modules (see each ``__init__``).
AREAS = ("embeddings", "pipeline", "search", "preferences", "styles")


def area_packages() -> list[str]:
    """Dotted names of the area packages (Celery discovers ``tasks`` modules in each)."""
    return [f"recommender.{area}" for area in AREAS]


def import_area_modules(module: str) -> None:
    """Import ``recommender.<area>.<module>`` for each area that has one (admin, receivers)."""
    for package in area_packages():
        if find_spec(f"{package}.{module}") is not None:
            import_module(f"{package}.{module}")


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        from catalog.hooks import slot_register, stats_table_register

        from .preferences import vote_stats_table

        import_area_modules("receivers")
        # Recommender's blocks on catalogue pages (catalog's templates never name them).
        slot_register("item_card", "recommender/preferences/_item_vote.html")
        slot_register("item_actions", "recommender/preferences/_item_vote.html")
        slot_register("item_below", "recommender/styles/_item_style.html")
        slot_register("item_below", "recommender/search/_looks_like.html")
        slot_register("item_image_facts", "recommender/embeddings/_item_facts.html")
        slot_register("home_actions", "recommender/_home_actions.html")
        slot_register("home_top", "recommender/preferences/_home_rate.html")
        slot_register("stats_collection", "recommender/preferences/_stats_votes.html")
        stats_table_register(vote_stats_table)
        from ml.training import (
            register_trained_backbones,  # backbones made by train_backbone
        )

        register_trained_backbones()
