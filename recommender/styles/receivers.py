"""Hooks of the styles area installed when the app is ready.

Learned similarity spaces are embedders made of a backbone and a stored head; processes started
before a head was fitted (web, workers) find it through this resolver the first time they see its
name, so new images keep getting vectors in the served space without a restart.
"""
from __future__ import annotations

from ml.embedders import add_resolver

from .similarity import head_model_resolve

add_resolver(head_model_resolve)
