"""Catalogue REST API: thin views over selectors and services."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Collection, Item
from .selectors import catalog_stats, collection_by_slug, filter_items, image_progress
from .serializers import CollectionSerializer, ItemSerializer, ProgressSerializer, StatsRowSerializer


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
        return Response(ProgressSerializer(image_progress(self.get_object())).data)


@extend_schema(parameters=ITEM_FILTERS)
class ItemViewSet(viewsets.ModelViewSet):
    serializer_class = ItemSerializer
    permission_classes = [IsStaffOrReadOnly]
    http_method_names = ["get", "post", "patch", "put", "head", "options"]

    def get_queryset(self):
        return filter_items(Item.objects.with_cover(), self.request.query_params).order_by("id")


class StatsView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("collection", str, description="Collection slug.")],
        responses=StatsRowSerializer(many=True),
        summary="Items by gender × label × split, smallest groups first",
    )
    def get(self, request: Request) -> Response:
        collection = collection_by_slug(request.query_params.get("collection"))
        return Response(StatsRowSerializer(catalog_stats(collection), many=True).data)
