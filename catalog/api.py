"""Catalogue REST API: thin views over selectors and services."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Collection, Item
from .selectors import collection_stats, filter_items, image_progress
from .serializers import CollectionSerializer, CollectionStatsSerializer, ItemSerializer, ProgressSerializer


class IsStaffOrReadOnly(permissions.BasePermission):
    """Anyone reads; only staff create or change catalogue rows."""

    def has_permission(self, request: Request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


ITEM_FILTERS = [
    OpenApiParameter(name, str, description=f"Only items whose {name} is this value.")
    for name in ("label", "gender", "split", "category")
] + [
    OpenApiParameter("collection", str, description="Collection slug."),
    OpenApiParameter("q", str, description="Words in the title."),
]


class CollectionViewSet(viewsets.ModelViewSet):
    queryset = Collection.objects.all()
    serializer_class = CollectionSerializer
    permission_classes = [IsStaffOrReadOnly]
    http_method_names = ["get", "post", "patch", "put", "head", "options"]

    @extend_schema(responses=ProgressSerializer, summary="Image pipeline progress of a collection")
    @action(detail=True, methods=["get"])
    def progress(self, request: Request, pk: str | None = None) -> Response:
        return Response(image_progress(self.get_object()))


@extend_schema(parameters=ITEM_FILTERS)
class ItemViewSet(viewsets.ModelViewSet):
    serializer_class = ItemSerializer
    permission_classes = [IsStaffOrReadOnly]
    http_method_names = ["get", "post", "patch", "put", "head", "options"]

    def get_queryset(self):
        return filter_items(Item.objects.with_cover(), self.request.query_params).order_by("id")


class StatsView(APIView):
    """The figures of the statistics page. Votes per label are the recommender's: ``/api/stats/votes/``."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("collection", str, description="Collection slug (default: every collection).")],
        responses=CollectionStatsSerializer(many=True),
        summary="Per collection: items as label × gender × split pivot, label shares, pipeline state",
    )
    def get(self, request: Request) -> Response:
        slug = request.query_params.get("collection")
        collection = get_object_or_404(Collection, slug=slug) if slug else None
        return Response(CollectionStatsSerializer(collection_stats(collection), many=True).data)
