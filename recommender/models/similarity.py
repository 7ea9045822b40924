"""Learned similarity spaces: a head fitted on a collection's labels over one backbone's vectors."""
from __future__ import annotations

from django.db import models

from catalog.models import Collection

from .embeddings import EmbeddingModel


class LearnedSpace(models.Model):
    """One fitted similarity head of a collection; the newest is the one a job backfills and activates.

    ``base_model`` holds the raw vectors it was fitted on; ``model`` is the served space
    (raw and learned blended, see ``ml.similarity``), an embedding model of its own with its own
    HNSW index, filled by the job and switched in like any other model.
    """

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="learned_spaces")
    base_model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="+")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="learned_spaces")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, help_text="lda, mlp or proxy (chosen on validation P@10).")
    weight = models.FloatField(help_text="Share of raw similarity in the served cosine.")
    fingerprint = models.CharField(max_length=64)
    artifact = models.CharField(max_length=500, help_text="Path under STYLESITE_ARTIFACT_DIR.")
    candidates = models.JSONField(default=list, help_text="Validation scores of every kind tried.")
    seconds = models.FloatField(default=0.0, help_text="Fitting time.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["collection", "version"], name="unique_learned_space_version")]

    def __str__(self) -> str:
        return f"{self.collection} similarity v{self.version} ({self.kind}, w={self.weight:g})"
