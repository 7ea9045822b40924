"""Styles area: clusters and the style map, the style classifier, curation, coherence ratings.

Other areas may use exactly the names below (photo search shows the classifier's guess; the
pipeline starts the first style jobs when a collection's ingest drains).
"""
from .selectors import style_guess_for_vector
from .services import style_job_start

__all__ = ["style_guess_for_vector", "style_job_start"]
