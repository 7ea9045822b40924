"""Preferences area: votes, predictors and their fitted artifacts, the personal feed, imports, evaluation.

Other areas use nothing of it; its pages and routes are mounted through ``urls``.
"""
