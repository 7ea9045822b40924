"""Recommender models, one module per area; every model is re-exported here for Django."""
from .embeddings import ActiveEmbeddingModel, Embedding, EmbeddingModel, EmbeddingQuerySet
from .votes import Vote

__all__ = ["ActiveEmbeddingModel", "Embedding", "EmbeddingModel", "EmbeddingQuerySet", "Vote"]
