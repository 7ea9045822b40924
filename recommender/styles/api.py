"""Style API: clusters, their items and coherence, the map, jobs, the classifier and ratings."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Collection, Item
from catalog.selectors import collection_by_slug
from catalog.serializers import ItemSerializer
from stylesite.exceptions import InvalidInput, NotFound, NotReady
from stylesite.params import parse_int

from ..models import StyleCluster, StyleJob
from . import selectors, services
from .clustering import MAP_METHODS

COLLECTION_PARAM = OpenApiParameter("collection", str, required=True, description="Collection slug.")


def _collection(request: Request) -> Collection:
    slug = request.query_params.get("collection")
    if not slug and request.method == "POST":
        slug = request.data.get("collection")
    return collection_by_slug(slug, required=True)


class StyleClusterSerializer(serializers.ModelSerializer):
    class Meta:
        model = StyleCluster
        fields = ["id", "index", "name", "named_by_curator", "size", "label_mix", "k"]


class StyleJobSerializer(serializers.ModelSerializer):
    collection = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = StyleJob
        fields = ["id", "collection", "kind", "status", "params", "progress", "message", "result", "error",
                  "created", "started", "finished"]


class MapPointSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    x = serializers.FloatField()
    y = serializers.FloatField()
    cluster = serializers.IntegerField()
    label = serializers.CharField()
    title = serializers.CharField()
    thumb = serializers.CharField()
    url = serializers.CharField()
    vote = serializers.CharField(help_text="like, dislike or empty (the requesting user's vote)")


class SummarySerializer(serializers.Serializer):
    ratings = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    by_group = serializers.DictField()


class ClusterListSerializer(serializers.Serializer):
    collection = serializers.CharField()
    k = serializers.IntegerField(allow_null=True)
    silhouette = serializers.FloatField(allow_null=True)
    silhouette_by_k = serializers.DictField(child=serializers.FloatField())
    inertia_by_k = serializers.DictField(child=serializers.FloatField())
    map_method = serializers.CharField(allow_null=True)
    clusters = StyleClusterSerializer(many=True)


class CoherenceSerializer(serializers.Serializer):
    cluster_id = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    cluster = SummarySerializer()
    control = SummarySerializer()


class StyleMapSerializer(serializers.Serializer):
    collection = serializers.CharField()
    points = MapPointSerializer(many=True)


class ClassifierReportSerializer(serializers.Serializer):
    collection = serializers.CharField(source="collection.slug")
    version = serializers.IntegerField()
    kind = serializers.CharField()
    model = serializers.CharField()
    fingerprint = serializers.CharField()
    created = serializers.DateTimeField()
    classes = serializers.ListField(child=serializers.CharField())
    candidates = serializers.ListField(child=serializers.DictField())
    validation = serializers.DictField()
    test = serializers.DictField()


class PredictedLabelItemsSerializer(serializers.Serializer):
    label = serializers.CharField()
    probability = serializers.FloatField(allow_null=True)
    items = ItemSerializer(many=True)


class CoherenceRatingSerializer(serializers.Serializer):
    set = serializers.IntegerField(source="set_id")
    score = serializers.IntegerField()


class ClusterListView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[COLLECTION_PARAM], summary="A collection's style clusters, with the clustering's "
                   "k, silhouette and both curves (silhouette and inertia by k)",
                   responses=ClusterListSerializer)
    def get(self, request: Request) -> Response:
        collection = _collection(request)
        clustering = selectors.clustering_of(collection)
        return Response(ClusterListSerializer({
            "collection": collection.slug,
            "k": clustering.k if clustering else None,
            "silhouette": clustering.silhouette if clustering else None,
            "silhouette_by_k": clustering.silhouette_by_k if clustering else {},
            "inertia_by_k": clustering.inertia_by_k if clustering else {},
            "map_method": clustering.map_method if clustering else None,
            "clusters": selectors.clusters_of(collection),
        }).data)


class ClusterItemsView(generics.ListAPIView):
    permission_classes = [permissions.AllowAny]
    serializer_class = ItemSerializer

    @extend_schema(summary="The items of one cluster (paginated)")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no pk
            return Item.objects.none()
        return selectors.cluster_items(get_object_or_404(StyleCluster, pk=self.kwargs["pk"]))


class ClusterCoherenceView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(summary="Coherence ratings of a cluster beside the collection's control sets",
                   responses=CoherenceSerializer)
    def get(self, request: Request, pk: int) -> Response:
        cluster = get_object_or_404(StyleCluster, pk=pk)
        return Response(CoherenceSerializer({
            "cluster_id": cluster.pk, "name": cluster.name, "cluster": selectors.coherence_of(cluster),
            "control": selectors.coherence_control(cluster.collection)}).data)


class StyleMapView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[COLLECTION_PARAM], summary="Map points (x, y in [0, 1]) with cluster, "
                   "label, thumbnail and, for a logged-in user, their vote",
                   responses=StyleMapSerializer)
    def get(self, request: Request) -> Response:
        collection = _collection(request)
        return Response(StyleMapSerializer({"collection": collection.slug,
                                            "points": selectors.map_points(collection, request.user)}).data)


class StyleJobCreateView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(request=inline_serializer("StyleJobRequest", {
        "collection": serializers.CharField(), "kind": serializers.ChoiceField(StyleJob.Kind.values),
        "map_method": serializers.ChoiceField(MAP_METHODS, required=False),
        "k_min": serializers.IntegerField(required=False), "k_max": serializers.IntegerField(required=False),
        "activate": serializers.BooleanField(required=False, help_text="similarity: switch searches to it."),
    }), responses={202: StyleJobSerializer}, summary="Start a clustering, classifier or similarity job (staff)")
    def post(self, request: Request) -> Response:
        collection = _collection(request)
        params = {k: request.data[k] for k in ("map_method", "k_min", "k_max", "activate")
                  if k in request.data}
        job = services.style_job_start(collection=collection, kind=str(request.data.get("kind", "")), params=params)
        return Response(StyleJobSerializer(job).data, status=202)


class StyleJobView(generics.RetrieveAPIView):
    """A job's state (staff: jobs are started by staff and their errors are for them)."""

    permission_classes = [permissions.IsAdminUser]
    serializer_class = StyleJobSerializer
    queryset = StyleJob.objects.select_related("collection")


class ClassifierView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[COLLECTION_PARAM], summary="The latest style classifier's reports: accuracy, "
                   "per-class accuracy, macro F1 and confusion matrix on validation and test",
                   responses=ClassifierReportSerializer)
    def get(self, request: Request) -> Response:
        collection = _collection(request)
        classifier = selectors.classifier_of(collection)
        if classifier is None:
            raise NotReady(f"no style classifier for {collection.slug} yet; run train_classifier")
        return Response(ClassifierReportSerializer(classifier).data)


class ClassifierTopView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[
        OpenApiParameter("item", int, description="An item id: use its predicted label."),
        OpenApiParameter("label", str, description="Or a label directly (needs collection)."),
        OpenApiParameter("collection", str, description="Collection slug (with label)."),
        OpenApiParameter("limit", int, description="How many items (1-100, default 12)."),
    ], summary="Top items of an item's predicted label (or of a label), most confident first",
        responses=PredictedLabelItemsSerializer)
    def get(self, request: Request) -> Response:
        limit = parse_int(request.query_params.get("limit"), name="limit", default=12, minimum=1, maximum=100)
        prediction = None
        if request.query_params.get("item"):
            item_id = parse_int(request.query_params["item"], name="item")
            item = Item.objects.select_related("collection").filter(pk=item_id).first()
            if item is None:
                raise NotFound(f"no item {item_id}")
            prediction = selectors.item_style_guess(item)
            if prediction is None:
                raise NotReady(f"item {item.pk} has no style prediction yet")
            collection, label = item.collection, prediction.label
        elif request.query_params.get("label"):
            collection, label = _collection(request), request.query_params["label"]
        else:
            raise InvalidInput("give item (an id) or label and collection")
        items = selectors.predicted_top_items(collection, label, limit)
        return Response(PredictedLabelItemsSerializer({
            "label": label, "probability": prediction.probability if prediction else None, "items": items,
        }, context={"request": request}).data)


class CoherenceRateView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=inline_serializer("CoherenceRatingRequest", {
        "set": serializers.IntegerField(), "score": serializers.IntegerField(min_value=1, max_value=5)}),
        summary="Rate a set of images 1-5 for \"do these feel alike?\" (once per user and set)",
        responses={201: CoherenceRatingSerializer})
    def post(self, request: Request) -> Response:
        set_id = parse_int(request.data.get("set"), name="set", minimum=1)
        rating = services.coherence_rate(user=request.user, set_id=set_id, score=request.data.get("score"))
        return Response(CoherenceRatingSerializer(rating).data, status=201)
