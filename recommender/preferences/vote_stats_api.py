"""``GET /api/stats/votes/``: votes per label, the recommender's companion to catalog's ``/api/stats/``."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Collection

from .vote_stats import vote_stats


class LabelVotesSerializer(serializers.Serializer):
    label = serializers.CharField()
    likes = serializers.IntegerField()
    dislikes = serializers.IntegerField()
    total = serializers.IntegerField()
    like_share = serializers.FloatField(help_text="Likes over votes (0–1).")


class VoteStatsSerializer(serializers.Serializer):
    collection = serializers.SlugField(source="collection.slug")
    name = serializers.CharField(source="collection.name")
    likes = serializers.IntegerField()
    dislikes = serializers.IntegerField()
    voters = serializers.IntegerField()
    like_share = serializers.FloatField(allow_null=True, help_text="Likes over votes (0–1); null without votes.")
    labels = LabelVotesSerializer(many=True, help_text="Per item label, most voted first.")


class VoteStatsView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("collection", str, description="Collection slug (default: every collection).")],
        responses=VoteStatsSerializer(many=True),
        summary="Per collection: likes, dislikes and the likes share, overall and per label",
    )
    def get(self, request: Request) -> Response:
        slug = request.query_params.get("collection")
        collections = [get_object_or_404(Collection, slug=slug)] if slug else Collection.objects.order_by("name")
        return Response(VoteStatsSerializer([vote_stats(c) for c in collections], many=True).data)
