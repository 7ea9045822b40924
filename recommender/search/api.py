"""Similarity-search API: look-alikes of an item, and search by photo. Thin views over selectors."""
from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Collection, Item
from catalog.serializers import ItemSerializer, item_data
from catalog.services import upload_check_size
from stylesite.exceptions import InvalidInput
from stylesite.limits import IPRateThrottle, UserOrIPRateThrottle, concurrency_slot
from stylesite.params import parse_int
from stylesite.parsers import SafeFormParser, SafeMultiPartParser

from ..styles import style_guess_for_vector
from .selectors import (
    MAX_K,
    Match,
    facets,
    item_for_search,
    nearest_items,
    search_params,
    similar_items,
    space_of,
)
from .services import crop_parse, query_image_embed


class CappedUploadHandler(FileUploadHandler):
    """Stops keeping a file once it passes STYLESITE_UPLOAD_MAX_BYTES: the rest is skipped, never buffered."""

    over_cap = False
    received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received = start + len(raw_data)
        if self.received > settings.STYLESITE_UPLOAD_MAX_BYTES:
            self.over_cap = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file


class PhotoSearchIPThrottle(IPRateThrottle):
    """Photo searches per client address, whoever is signed in (STYLESITE_PHOTO_SEARCH_IP_RATE)."""

    scope = "photo_search_ip"


SPACES = ["raw", "learned"]
SPACE_HELP = ("Which space answered: `raw` backbone vectors, or `learned`: raw and label-trained similarity "
              "blended (the collection's similarity head).")


class MatchSerializer(serializers.Serializer):
    # The fields declare the schema; the output is built by ``item_data`` (ItemSerializer's output without
    # DRF's per-field work, which was a third of a similar-items request's CPU). A comment, not a
    # docstring: a docstring would become the schema's description.
    item = ItemSerializer()
    score = serializers.FloatField(help_text="Cosine similarity of the closest images, -1 to 1 (higher is closer).")
    space = serializers.ChoiceField(choices=SPACES, help_text=SPACE_HELP)

    def to_representation(self, match: Match) -> dict:
        return {"item": item_data(match.item, self.context.get("request")), "score": float(match.score),
                "space": match.space}


class FacetSerializer(serializers.Serializer):
    value = serializers.CharField()
    count = serializers.IntegerField()


class FacetsSerializer(serializers.Serializer):
    label = FacetSerializer(many=True)
    gender = FacetSerializer(many=True)


class LooksLikeSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="The style classifier's most likely label for the photo.")
    probability = serializers.FloatField()


class QuerySerializer(serializers.Serializer):
    collection = serializers.CharField(help_text="Slug of the collection searched.")
    model = serializers.CharField(help_text="Embedding model (name and version) used.")
    space = serializers.ChoiceField(choices=SPACES, help_text=SPACE_HELP)
    crop = serializers.ListField(child=serializers.IntegerField(), allow_null=True,
                                 help_text="x, y, w, h in pixels of the uploaded image, or null.")
    background_removed = serializers.BooleanField()
    cutout = serializers.CharField(help_text="What was searched (the embedder's input) as a data: URL.")
    looks_like = LooksLikeSerializer(allow_null=True,
                                     help_text="The collection's classifier's guess, or null without a classifier.")


class ImageSearchResponseSerializer(serializers.Serializer):
    results = MatchSerializer(many=True)
    facets = FacetsSerializer()
    query = QuerySerializer()


class ImageSearchRequestSerializer(serializers.Serializer):
    """Documents the multipart form; the view validates with the same rules as the pipeline."""

    image = serializers.FileField(help_text="JPEG, PNG or WebP photo, at most STYLESITE_UPLOAD_MAX_BYTES (10 MB).")
    crop = serializers.CharField(required=False, help_text="x,y,w,h in pixels of the upright photo.")
    k = serializers.IntegerField(required=False, min_value=1, max_value=MAX_K, default=12)
    collection = serializers.CharField(required=False, help_text="Collection slug (default: the first by name).")
    label = serializers.CharField(required=False)
    gender = serializers.ChoiceField(required=False, choices=Item.Gender.values)
    split = serializers.ChoiceField(required=False, choices=Item.Split.values)


_ITEM_EXAMPLE = {"id": 42, "collection": "clothing", "title": "dress 7", "label": "dress", "category": "",
                 "gender": "W", "period": "", "split": "train", "source_name": "dress/7.jpg", "external_url": "",
                 "price": None, "url": "/items/42/", "images": [], "created": "2026-11-25T10:00:00Z",
                 "updated": "2026-11-25T10:00:00Z"}
FILTER_PARAMETERS = [
    OpenApiParameter("k", int, description=f"How many items, 1 to {MAX_K} (default 12)."),
    OpenApiParameter("collection", str, description="Collection slug to search (default: the item's own)."),
    OpenApiParameter("label", str, description="Only items with this label."),
    OpenApiParameter("gender", str, enum=Item.Gender.values, description="Only items of this gender."),
    OpenApiParameter("split", str, enum=Item.Split.values, description="Only this split."),
]


class SimilarItemsView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Items that look most like this one",
        description="Nearest neighbours by cosine similarity of image embeddings under the searched "
                    "collection's active model; one row per item (its best image), the item itself excluded.",
        parameters=FILTER_PARAMETERS,
        responses={200: MatchSerializer(many=True), 400: OpenApiResponse(description="Bad parameter."),
                   404: OpenApiResponse(description="No such item."),
                   409: OpenApiResponse(description="The item has no embedding yet.")},
        examples=[OpenApiExample("Two look-alikes", response_only=True,
                                 value=[{"item": _ITEM_EXAMPLE, "score": 0.87, "space": "raw"},
                                        {"item": {**_ITEM_EXAMPLE, "id": 57, "title": "dress 12"}, "score": 0.81,
                                         "space": "raw"}])],
    )
    def get(self, request: Request, pk: int) -> Response:
        item = item_for_search(pk)
        matches = similar_items(item, search_params(request.query_params))
        return Response(MatchSerializer(matches, many=True, context={"request": request}).data)


class ImageSearchView(APIView):
    permission_classes = [permissions.AllowAny]
    parser_classes = [SafeMultiPartParser, SafeFormParser]
    throttle_classes = [PhotoSearchIPThrottle, UserOrIPRateThrottle]
    throttle_scope = "photo_search"

    @extend_schema(
        summary="Search the catalogue by photo",
        description="Upload a photo (optionally with a crop box); it is decoded, cut out when the collection "
                    "removes backgrounds, embedded like catalogue images, and never stored. Throttled per "
                    "user (STYLESITE_PHOTO_SEARCH_RATE) and per client address (STYLESITE_PHOTO_SEARCH_IP_RATE); "
                    "at most STYLESITE_SEARCH_MAX_CONCURRENT searches run at once.",
        request={"multipart/form-data": ImageSearchRequestSerializer},
        responses={200: ImageSearchResponseSerializer,
                   400: OpenApiResponse(description="Not an accepted image, too large, or a bad parameter."),
                   429: OpenApiResponse(description="Too many searches; see the Retry-After header."),
                   503: OpenApiResponse(description="Too many searches running; see the Retry-After header.")},
        examples=[
            OpenApiExample("A cropped street photo", request_only=True, media_type="multipart/form-data",
                           value={"image": "(binary)", "crop": "120,80,400,600", "k": 12, "collection": "clothing"}),
            OpenApiExample("Results", response_only=True, value={
                "results": [{"item": _ITEM_EXAMPLE, "score": 0.79, "space": "learned"}],
                "facets": {"label": [{"value": "dress", "count": 1}], "gender": [{"value": "W", "count": 1}]},
                "query": {"collection": "clothing", "model": "efficientnet-lite0 (v1)", "space": "learned",
                          "crop": [120, 80, 400, 600],
                          "background_removed": True, "cutout": "data:image/webp;base64,UklGR...",
                          "looks_like": {"label": "dress", "probability": 0.87}}}),
        ],
    )
    def post(self, request: Request) -> Response:
        # Refuse a body far over the cap before Django reads it into a temporary file.
        declared = parse_int(request.META.get("CONTENT_LENGTH"), name="Content-Length", default=0)
        if declared > settings.STYLESITE_UPLOAD_MAX_BYTES + settings.STYLESITE_UPLOAD_FORM_OVERHEAD_BYTES:
            upload_check_size(declared)
        cap = CappedUploadHandler(request._request)
        request._request.upload_handlers = [cap, *request._request.upload_handlers]
        upload = request.FILES.get("image")
        if cap.over_cap:
            upload_check_size(max(cap.received, declared))
        if upload is None:
            raise InvalidInput("send the photo as the multipart field `image`")
        upload_check_size(upload.size)
        params = search_params(request.data)
        collection = params.collection or Collection.objects.first()
        if collection is None:
            raise InvalidInput("there is no collection to search")
        crop = crop_parse(request.data.get("crop"))
        with concurrency_slot("photo-search", limit=settings.STYLESITE_SEARCH_MAX_CONCURRENT,
                              lease_seconds=settings.STYLESITE_SEARCH_LEASE_SECONDS):
            query = query_image_embed(data=upload.read(), collection=collection, crop=crop)
        matches = nearest_items(query.vector, query.model, params, collection=collection)
        guess = style_guess_for_vector(collection, query.vector)
        result = {
            "results": matches,
            "facets": facets(matches),
            "query": {"collection": collection.slug, "model": str(query.model), "space": space_of(query.model),
                      "crop": list(query.crop) if query.crop else None,
                      "background_removed": query.background_removed, "cutout": query.cutout_data_url(),
                      "looks_like": {"label": guess[0], "probability": round(guess[1], 3)} if guess else None},
        }
        return Response(ImageSearchResponseSerializer(result, context={"request": request}).data)

