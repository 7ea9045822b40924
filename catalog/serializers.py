from __future__ import annotations

from rest_framework import serializers

from .models import Collection, Item, ItemImage


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
                  "source_name", "external_url", "price", "url", "images", "created", "updated"]
        read_only_fields = ["source_name", "created", "updated"]


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
