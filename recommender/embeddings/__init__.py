"""Embeddings area: model registry rows, the one ensure step for indexes, active models, vectors.

Other areas may use exactly the names below.
"""
from .selectors import (
    CollectionMatrix,
    CollectionVectors,
    active_model,
    active_model_or_none,
    as_array,
    collection_matrix,
    collection_vectors,
    matrix_key,
)
from .signals import active_model_switched
from .services import (
    active_model_switch,
    collection_embedding_ensure,
    embedding_model_ensure,
    embeddings_ensure_all,
    embeddings_upsert,
)

__all__ = [
    "CollectionMatrix", "CollectionVectors", "active_model", "active_model_or_none", "active_model_switch",
    "active_model_switched",
    "as_array", "collection_embedding_ensure", "collection_matrix", "collection_vectors",
    "embedding_model_ensure", "embeddings_ensure_all", "embeddings_upsert", "matrix_key",
]
