from __future__ import annotations

from django.http import HttpRequest
from rest_framework import serializers

from .models import Collection, ImportJob, Item, ItemImage


class CollectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Collection
        fields = ["id", "name", "slug", "description", "kind", "remove_background", "embedding_model", "created"]
        read_only_fields = ["embedding_model", "created"]


class ItemImageSerializer(serializers.ModelSerializer):
    original = serializers.ImageField(read_only=True)
    thumbnail = serializers.ImageField(read_only=True)

    class Meta:
        model = ItemImage
        fields = ["id", "original", "thumbnail", "status", "width", "height", "position", "suspect"]
        read_only_fields = fields


class ItemSerializer(serializers.ModelSerializer):
    collection = serializers.SlugRelatedField(slug_field="slug", queryset=Collection.objects.all())
    images = ItemImageSerializer(many=True, read_only=True)
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = Item
        fields = ["id", "collection", "title", "label", "category", "gender", "period", "split",
                  "source_name", "external_url", "price", "external_id", "url", "images", "created", "updated"]
        read_only_fields = ["source_name", "created", "updated"]


_DATETIME = serializers.DateTimeField()
_PRICE = serializers.DecimalField(max_digits=10, decimal_places=2)


def _file_url(file, request: HttpRequest | None) -> str | None:
    """An image file as ``ItemImageSerializer``'s ImageField writes it: absolute URL, or None when empty."""
    if not file:
        return None
    return request.build_absolute_uri(file.url) if request is not None else file.url


def item_data(item: Item, request: HttpRequest | None = None) -> dict:
    """Exactly ``ItemSerializer(item, context={"request": request}).data``, built without DRF's per-field
    machinery, for read paths that list many items per request (look-alikes: there it was a third of
    the request's CPU). Needs ``collection`` and ``images`` loaded (``Item.objects.with_cover()``);
    tests/recommender/test_search_api.py holds the two equal; ItemSerializer stays the schema."""
    return {
        "id": item.pk, "collection": item.collection.slug, "title": item.title, "label": item.label,
        "category": item.category, "gender": item.gender, "period": item.period, "split": item.split,
        "source_name": item.source_name, "external_url": item.external_url,
        "price": None if item.price is None else _PRICE.to_representation(item.price),
        "external_id": item.external_id, "url": item.get_absolute_url(),
        "images": [{"id": image.pk, "original": _file_url(image.original, request),
                    "thumbnail": _file_url(image.thumbnail, request), "status": image.status,
                    "width": image.width, "height": image.height, "position": image.position,
                    "suspect": image.suspect} for image in item.images.all()],
        "created": _DATETIME.to_representation(item.created), "updated": _DATETIME.to_representation(item.updated),
    }


class PivotRowSerializer(serializers.Serializer):
    label = serializers.CharField()
    gender = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Items per split.")
    total = serializers.IntegerField()


class PivotSerializer(serializers.Serializer):
    splits = serializers.ListField(child=serializers.CharField(), help_text="The columns, in split order.")
    rows = PivotRowSerializer(many=True, help_text="Label × gender, by label.")
    column_totals = serializers.DictField(child=serializers.IntegerField(), help_text="Items per split.")
    total = serializers.IntegerField()


class LabelShareSerializer(serializers.Serializer):
    label = serializers.CharField()
    count = serializers.IntegerField()
    share = serializers.FloatField(help_text="Of the collection's items (0–1).")


class ReasonCountSerializer(serializers.Serializer):
    reason = serializers.CharField()
    count = serializers.IntegerField()


class PipelineStateSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    ready = serializers.IntegerField()
    failed = serializers.IntegerField()
    suspect = serializers.IntegerField(help_text="Cut-outs that look wrong (embedded from the uncut image).")
    total = serializers.IntegerField()
    failed_reasons = ReasonCountSerializer(many=True, help_text="Failed images grouped by reason, most first.")


class CollectionStatsSerializer(serializers.Serializer):
    collection = serializers.SlugField(source="collection.slug")
    name = serializers.CharField(source="collection.name")
    pivot = PivotSerializer()
    labels = LabelShareSerializer(many=True, help_text="Items per label, largest first.")
    imbalance_ratio = serializers.FloatField(
        allow_null=True, help_text="Largest label over smallest; null with fewer than two labels.")
    pipeline = PipelineStateSerializer()


class ProgressSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    ready = serializers.IntegerField()
    failed = serializers.IntegerField()
    suspect = serializers.IntegerField()
    total = serializers.IntegerField()


IMAGE_HELP = "JPEG, PNG or WebP photo, at most STYLESITE_UPLOAD_MAX_BYTES (10 MB by default)."


class ImageSerializer(ItemImageSerializer):
    """An image with its item and pipeline state (``status``; ``error`` says why it failed)."""

    class Meta(ItemImageSerializer.Meta):
        fields = ["id", "item", "original", "thumbnail", "status", "error", "attempts", "width", "height",
                  "position", "suspect", "created"]
        read_only_fields = fields


class ImageUploadSerializer(serializers.Serializer):
    image = serializers.FileField(help_text=IMAGE_HELP)


class ItemCreateSerializer(ItemSerializer):
    """``POST /api/items/``: the item's fields, and optionally its first photo (multipart)."""

    image = serializers.FileField(write_only=True, required=False, help_text=IMAGE_HELP)

    class Meta(ItemSerializer.Meta):
        fields = [*ItemSerializer.Meta.fields, "image"]


class ItemUpsertSerializer(serializers.ModelSerializer):
    """The fields a client sends to ``PUT /api/collections/{slug}/items/{external_id}/`` (all of them:
    a field left out goes back to its default)."""

    class Meta:
        model = Item
        fields = ["title", "label", "category", "gender", "period", "split", "external_url", "price"]


class ImportJobCreateSerializer(serializers.Serializer):
    collection = serializers.SlugRelatedField(slug_field="slug", queryset=Collection.objects.all(),
                                              help_text="Slug of the collection the items go to.")
    csv = serializers.FileField(help_text="UTF-8 CSV with the columns image and label (optional: title, "
                                          "category, gender, period, split, external_url, price); image is a "
                                          "path inside the zip.")
    images = serializers.FileField(help_text="Zip of the images the CSV names (at most STYLESITE_IMPORT_MAX_FILES "
                                             "files and STYLESITE_IMPORT_MAX_BYTES uncompressed).")


class ImportJobSerializer(serializers.ModelSerializer):
    collection = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    report = serializers.SerializerMethodField(help_text="The per-row report as CSV.")

    class Meta:
        model = ImportJob
        fields = ["id", "collection", "status", "error", "total", "processed", "imported", "duplicate",
                  "rejected", "created", "started", "finished", "report"]
        read_only_fields = fields

    def get_report(self, job: ImportJob) -> str:
        from django.urls import reverse

        path = reverse("api-import-report", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

