"""Signals the embeddings area sends; other areas listen without the embeddings area knowing them."""
from django.dispatch import Signal

# A collection's searches now use another embedding model (sent after the switch commits); kwargs:
# collection_id, model_id, previous_model_id (None when the collection had no active model).
active_model_switched = Signal()
