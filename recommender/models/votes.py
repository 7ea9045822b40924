from __future__ import annotations

from django.conf import settings
from django.db import models

from catalog.models import Item


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
