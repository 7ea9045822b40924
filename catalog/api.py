"""Catalogue REST API: thin views over selectors and services."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from stylesite.exceptions import Conflict, InvalidInput
from stylesite.parsers import SafeFormParser, SafeMultiPartParser

from .models import Collection, ImportJob, Item, ItemImage
from .pagination import ChangesPagination, updated_after_parse
from .selectors import (
    collection_by_slug,
    collection_stats,
    filter_items,
    image_progress,
    import_report_csv,
)
from .serializers import (
    CollectionSerializer,
    CollectionStatsSerializer,
    ImageSerializer,
    ImageUploadSerializer,
    ImportJobCreateSerializer,
    ImportJobSerializer,
    ItemCreateSerializer,
    ItemSerializer,
    ItemUpsertSerializer,
    ProgressSerializer,
)
from .services import (
    DuplicateImage,
    ItemFields,
    image_add,
    image_delete,
    import_job_create,
    item_create,
    item_create_with_image,
    item_delete,
    item_upsert,
    upload_check_size,
)


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
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def get_queryset(self):
        return filter_items(Item.objects.with_cover(), self.request.query_params).order_by("id")

    @extend_schema(
        parameters=[
            OpenApiParameter("updated_after", OpenApiTypes.DATETIME, description=(
                "Changes feed: only items created or changed after this ISO 8601 time (UTC when it has no "
                "offset), ordered by (updated, id) and paged by `cursor` instead of `page`.")),
            OpenApiParameter("cursor", str, description="With `updated_after`: the page after this one, "
                             "as given in `next`."),
        ],
        examples=[OpenApiExample("Changes feed page", response_only=True, value={
            "count": 2, "next": None, "previous": None,
            "results": [{"id": 41, "collection": "garments", "title": "Linen dress", "external_id": "SKU-1001",
                         "updated": "2026-12-02T07:15:03.120000Z"}]})],
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        if "updated_after" not in request.query_params:
            return super().list(request, *args, **kwargs)
        since = updated_after_parse(request.query_params["updated_after"])
        paginator = ChangesPagination()
        page = paginator.paginate_queryset(self.get_queryset().filter(updated__gt=since), request, view=self)
        return paginator.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Create an item, optionally with its first photo",
        description="JSON for an item alone; multipart with an `image` file to create the item and its first "
                    "image together (both or neither). The image is checked like an imported one (JPEG, PNG "
                    "or WebP, size and pixel caps) and queued for the pipeline.",
        request={"application/json": ItemCreateSerializer, "multipart/form-data": ItemCreateSerializer},
        responses={201: ItemSerializer,
                   400: OpenApiResponse(description="A bad field, or a file that is not an accepted image."),
                   409: OpenApiResponse(description="The collection already holds this photo or external_id.")},
        examples=[OpenApiExample("A dress with its photo", request_only=True, media_type="multipart/form-data",
                                 value={"collection": "garments", "title": "Linen dress", "label": "dress",
                                        "split": "train", "external_id": "SKU-1001", "image": "(binary)"})],
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = ItemCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        collection, upload = data.pop("collection"), data.pop("image", None)
        if upload is None:
            item = item_create(collection=collection, fields=ItemFields(**data))
        else:
            upload_check_size(upload.size)
            with _duplicate_as_conflict():
                item = item_create_with_image(collection=collection, fields=ItemFields(**data),
                                              data=upload.read(), filename=upload.name).item
        created = Item.objects.with_cover().get(pk=item.pk)
        return Response(ItemSerializer(created, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(summary="Delete an item with its images, their files and vectors, and its votes",
                   responses={204: None})
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        item_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Add a photo to an item",
        description="Multipart upload of one photo. It is checked like an imported one (JPEG, PNG or WebP; "
                    "size and pixel caps; the same bytes twice in a collection are refused) and queued for the "
                    "pipeline; follow `status` at `/api/images/{id}/` or the collection's `progress`.",
        request={"multipart/form-data": ImageUploadSerializer},
        responses={201: ImageSerializer,
                   400: OpenApiResponse(description="No file, or not an accepted image."),
                   404: OpenApiResponse(description="No such item."),
                   409: OpenApiResponse(description="The collection already holds this photo.")},
        examples=[
            OpenApiExample("Upload", request_only=True, media_type="multipart/form-data",
                           value={"image": "(binary)"}),
            OpenApiExample("Queued image", response_only=True, status_codes=["201"], value={
                "id": 7, "item": 41, "original": "http://example.org/media/originals/2026/12/dress.jpg",
                "thumbnail": "http://example.org/media/thumbs/2026/12/dress.webp", "status": "pending",
                "error": "", "attempts": 0, "width": 600, "height": 800, "position": 1, "suspect": False,
                "created": "2026-12-02T07:15:03Z"}),
        ],
    )
    @action(detail=True, methods=["post"], url_path="images", parser_classes=[SafeMultiPartParser, SafeFormParser],
            serializer_class=ImageUploadSerializer)
    def images(self, request: Request, pk: str | None = None) -> Response:
        item = self.get_object()
        upload = request.FILES.get("image")
        if upload is None:
            raise InvalidInput("send the photo as the multipart field `image`")
        upload_check_size(upload.size)
        with _duplicate_as_conflict():
            image = image_add(item=item, data=upload.read(), filename=upload.name)
        return Response(ImageSerializer(image, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)


class StatsView(APIView):
    """The figures of the statistics page. Votes per label are the recommender's: ``/api/stats/votes/``."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("collection", str, description="Collection slug (default: every collection).")],
        responses=CollectionStatsSerializer(many=True),
        summary="Per collection: items as label × gender × split pivot, label shares, pipeline state",
    )
    def get(self, request: Request) -> Response:
        collection = collection_by_slug(request.query_params.get("collection"))
        return Response(CollectionStatsSerializer(collection_stats(collection), many=True).data)


@contextmanager
def _duplicate_as_conflict() -> Iterator[None]:
    """``DuplicateImage`` from a service becomes a 409 that names the image already there."""
    try:
        yield
    except DuplicateImage as exc:
        raise Conflict(f"the collection already holds this photo: image {exc.existing.pk} of item "
                       f"{exc.existing.item_id}") from exc


@extend_schema(tags=["images"])
class ImageViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """One catalogue image and its pipeline state; staff delete it with its files and vectors."""

    queryset = ItemImage.objects.all()
    serializer_class = ImageSerializer
    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(summary="An image and its pipeline state", examples=[OpenApiExample("Ready", value={
        "id": 7, "item": 41, "original": "http://example.org/media/originals/2026/12/dress.jpg",
        "thumbnail": "http://example.org/media/thumbs/2026/12/dress.webp", "status": "ready", "error": "",
        "attempts": 1, "width": 600, "height": 800, "position": 0, "suspect": False,
        "created": "2026-12-02T07:15:03Z"})])
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(summary="Delete an image with its files (original, thumbnail, mask, cut-out) and vectors",
                   description="A pipeline task still working on the image ends quietly and stores nothing.",
                   responses={204: None, 404: OpenApiResponse(description="No such image.")})
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        image_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemUpsertView(APIView):
    """An item by the client's own key (``external_id``), for clients that keep their list in step."""

    permission_classes = [IsStaffOrReadOnly]

    @extend_schema(summary="The item a client knows by external_id", responses={
        200: ItemSerializer, 404: OpenApiResponse(description="No such collection or item.")})
    def get(self, request: Request, slug: str, external_id: str) -> Response:
        item = get_object_or_404(Item.objects.with_cover(), collection__slug=slug, external_id=external_id)
        return Response(ItemSerializer(item, context={"request": request}).data)

    @extend_schema(
        summary="Create or update an item by external_id (idempotent)",
        description="Creates the item (201) when the collection has none with this external_id, else replaces "
                    "its fields (200); sending the same body again changes nothing. Photos are added with "
                    "`POST /api/items/{id}/images/`.",
        request=ItemUpsertSerializer,
        responses={200: ItemSerializer, 201: ItemSerializer,
                   400: OpenApiResponse(description="A bad field."),
                   404: OpenApiResponse(description="No such collection.")},
        examples=[OpenApiExample("A product of the shop", request_only=True, value={
            "title": "Linen dress", "label": "dress", "category": "dresses", "gender": "W", "split": "train",
            "external_url": "https://shop.example.org/p/1001", "price": "79.00"})],
    )
    def put(self, request: Request, slug: str, external_id: str) -> Response:
        collection = get_object_or_404(Collection, slug=slug)
        serializer = ItemUpsertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item, created = item_upsert(collection=collection, external_id=external_id,
                                    fields=ItemFields(**serializer.validated_data))
        body = ItemSerializer(Item.objects.with_cover().get(pk=item.pk), context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


_JOB_EXAMPLE = {"id": 3, "collection": "garments", "status": "running", "error": "", "total": 200,
                "processed": 120, "imported": 117, "duplicate": 2, "rejected": 1,
                "created": "2026-12-02T07:20:00Z", "started": "2026-12-02T07:20:01Z", "finished": None,
                "report": "http://example.org/api/imports/3/report.csv"}


@extend_schema(tags=["imports"])
class ImportJobViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                       viewsets.GenericViewSet):
    """Bulk imports (staff only): a CSV plus a zip of images, run as a Celery job."""

    queryset = ImportJob.objects.select_related("collection")
    serializer_class = ImportJobSerializer
    permission_classes = [permissions.IsAdminUser]
    parser_classes = [SafeMultiPartParser, SafeFormParser]

    @extend_schema(
        summary="Start a bulk import: a CSV plus a zip of the images it names",
        description="The CSV has the `csv` layout of `import_catalog` (columns image, label; optional title, "
                    "category, gender, period, split, external_url, price), with image paths inside the zip. "
                    "The zip is refused up front when it has too many files, inflates past the cap, or names a "
                    "path outside itself (absolute or with `..`). The job runs in Celery: follow it at "
                    "`/api/imports/{id}/` and download the per-row report from `report`.",
        request={"multipart/form-data": ImportJobCreateSerializer},
        responses={201: ImportJobSerializer,
                   400: OpenApiResponse(description="A CSV without image/label columns, or a refused zip.")},
        examples=[
            OpenApiExample("Upload", request_only=True, media_type="multipart/form-data",
                           value={"collection": "garments", "csv": "(binary)", "images": "(binary)"}),
            OpenApiExample("Queued", response_only=True, status_codes=["201"],
                           value={**_JOB_EXAMPLE, "status": "queued", "total": 0, "processed": 0, "imported": 0,
                                  "duplicate": 0, "rejected": 0, "started": None}),
        ],
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = ImportJobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = import_job_create(collection=serializer.validated_data["collection"],
                                csv_file=serializer.validated_data["csv"],
                                zip_file=serializer.validated_data["images"], user=request.user)
        return Response(ImportJobSerializer(job, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(summary="Import jobs, newest first")
    def list(self, request: Request, *args, **kwargs) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="An import job's status and progress",
                   examples=[OpenApiExample("Running", value=_JOB_EXAMPLE)])
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return super().retrieve(request, *args, **kwargs)


class ImportReportView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        summary="An import job's per-row report as CSV",
        description="Columns row (1 = the CSV's first row after its header), image, outcome (imported, "
                    "duplicate or rejected), reason, item_id.",
        responses={(200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR, examples=[OpenApiExample(
            "Report", value="row,image,outcome,reason,item_id\r\n1,dress/a.jpg,imported,,41\r\n"
                            "2,hat/b.jpg,rejected,not an image file,\r\n")]),
                   404: OpenApiResponse(description="No such job.")},
        tags=["imports"],
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        job = get_object_or_404(ImportJob, pk=pk)
        response = HttpResponse(import_report_csv(job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-report.csv"'
        return response
