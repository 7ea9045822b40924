"""Admin of the embeddings area: models, active models, vectors (all read-only)."""
from django.contrib import admin

from ..models import ActiveEmbeddingModel, Embedding, EmbeddingModel


@admin.register(EmbeddingModel)
class EmbeddingModelAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "dimension", "vectors", "created"]
    readonly_fields = ["name", "version", "dimension", "created"]

    @admin.display(description="Vectors")
    def vectors(self, obj: EmbeddingModel) -> int:
        return obj.embeddings.count()


@admin.register(ActiveEmbeddingModel)
class ActiveEmbeddingModelAdmin(admin.ModelAdmin):
    list_display = ["collection", "model", "activated"]
    readonly_fields = ["collection", "model", "activated"]

    def has_add_permission(self, request) -> bool:
        return False  # switching goes through `reembed --activate`, after a full backfill


@admin.register(Embedding)
class EmbeddingAdmin(admin.ModelAdmin):
    list_display = ["image", "item", "model", "created"]
    list_filter = ["model"]
    raw_id_fields = ["image", "item"]
    exclude = ["vector"]

    def has_add_permission(self, request) -> bool:
        return False
