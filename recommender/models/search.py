from __future__ import annotations

from django.db import models

from catalog.models import Collection


class RetrievalReport(models.Model):
    """One run of ``evaluate_retrieval``: same-label retrieval quality per embedding model.

    ``rows`` holds one entry per model: ``{"model", "version", "queries", "gallery",
    "metrics": {"precision@5": 0.81, "recall@5": ..., "map@5": ...}}``; ``table`` is the text the
    command printed, kept so the admin shows exactly what the operator saw.
    """

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="retrieval_reports")
    background_removed = models.BooleanField(help_text="Whether the collection cut subjects out before embedding.")
    query_splits = models.CharField(max_length=100, help_text="Splits whose items were the queries.")
    gallery_split = models.CharField(max_length=20, help_text="Split searched for neighbours.")
    k_values = models.JSONField(help_text="The cut-offs k, ascending.")
    ef_search = models.PositiveIntegerField()
    rows = models.JSONField()
    table = models.TextField()
    seconds = models.FloatField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"Retrieval of {self.collection} at {self.created:%Y-%m-%d %H:%M}"
