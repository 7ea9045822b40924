"""Styles area: clusters and the style map, the style classifier, curation, coherence ratings.

Other areas may use exactly the names below (photo search shows the classifier's guess).
"""
from .selectors import style_guess_for_vector

__all__ = ["style_guess_for_vector"]
