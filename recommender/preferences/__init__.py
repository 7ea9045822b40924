"""Preferences area: votes, predictors and their fitted artifacts, the personal feed, imports, evaluation.

Other areas use nothing of it; its pages and routes are mounted through ``urls``. ``recommender.apps``
adds ``vote_stats_table`` to ``manage.py catalog_stats``.
"""
from .vote_stats import vote_stats_table

__all__ = ["vote_stats_table"]
