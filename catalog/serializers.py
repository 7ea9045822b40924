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


class StatsRowSerializer(serializers.Serializer):
    gender = serializers.CharField()
    label = serializers.CharField()
    split = serializers.CharField()
    count = serializers.IntegerField()


class ProgressSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    ready = serializers.IntegerField()
    failed = serializers.IntegerField()
    suspect = serializers.IntegerField()
    total = serializers.IntegerField()
