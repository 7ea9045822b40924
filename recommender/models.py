from __future__ import annotations

from django.conf import settings
from django.db import models
from pgvector.django import HalfVectorField

from catalog.models import Collection, Item, ItemImage


class EmbeddingModel(models.Model):
    """One backbone at one version. Vectors of different rows never meet in a search."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=200)
    dimension = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="unique_model_version")]

    def __str__(self) -> str:
        return f"{self.name} ({self.version})"

    @property
    def index_name(self) -> str:
        return f"embedding_hnsw_model_{self.pk}"


class ActiveEmbeddingModel(models.Model):
    """The model whose vectors a collection's searches use; switched only after a full backfill."""

    collection = models.OneToOneField(Collection, on_delete=models.CASCADE, related_name="active_embedding")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.PROTECT, related_name="active_for")
    activated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.collection}: {self.model}"


class EmbeddingQuerySet(models.QuerySet):
    def for_model(self, model: EmbeddingModel) -> EmbeddingQuerySet:
        return self.filter(model=model)


class Embedding(models.Model):
    """An image's vector under one model.

    Stored as ``halfvec`` without a fixed dimension: one table serves every backbone (512 to
    2,048 dimensions; ``vector``'s HNSW stops at 2,000), and each model gets its own partial HNSW
    index over ``vector::halfvec(D)`` (see ``services.embedding_model_ensure``).
    """

    image = models.ForeignKey(ItemImage, on_delete=models.CASCADE, related_name="embeddings")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="embeddings")
    model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="embeddings")
    vector = HalfVectorField()
    created = models.DateTimeField(auto_now_add=True)

    objects = EmbeddingQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "model"], name="unique_embedding_per_model")]


class Vote(models.Model):
    class Value(models.TextChoices):
        LIKE = "like", "Like"
        DISLIKE = "dislike", "Dislike"

    class Source(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        IMPORT = "import", "Import"

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VALIDATION = "validation", "Validation"
        NONE = "none", "None"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="votes")
    value = models.CharField(max_length=8, choices=Value.choices)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WEB)
    split = models.CharField(max_length=12, choices=Split.choices, default=Split.NONE)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "item"], name="unique_vote_per_user_item")]
        indexes = [models.Index(fields=["item", "value"])]

    def __str__(self) -> str:
        return f"{self.user} {self.value}s {self.item}"
