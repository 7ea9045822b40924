"""Recommender models, one module per area; every model is re-exported here for Django."""
from .embeddings import (
    ActiveEmbeddingModel,
    Embedding,
    EmbeddingModel,
    EmbeddingQuerySet,
)
from .preferences import (
    ItemDescriptor,
    PreferenceModel,
    PreferenceReport,
    ServedPredictor,
    VoterProfile,
)
from .search import RetrievalReport
from .similarity import LearnedSpace
from .styles import (
    CoherenceRating,
    CoherenceSet,
    ItemStyle,
    Mislabel,
    NearDuplicate,
    StyleClassifier,
    StyleCluster,
    StyleClustering,
    StyleJob,
    StylePrediction,
)
from .votes import Vote

__all__ = [
    "ActiveEmbeddingModel", "CoherenceRating", "CoherenceSet", "Embedding", "EmbeddingModel",
    "EmbeddingQuerySet", "ItemDescriptor", "ItemStyle", "LearnedSpace", "Mislabel", "NearDuplicate",
    "PreferenceModel", "PreferenceReport",
    "RetrievalReport", "ServedPredictor", "StyleClassifier", "StyleCluster", "StyleClustering",
    "StyleJob", "StylePrediction", "VoterProfile", "Vote",
]
