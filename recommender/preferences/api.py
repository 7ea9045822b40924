"""Votes and personal predictions over the REST API: thin views over services and selectors."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.serializers import ItemSerializer, item_data
from stylesite.exceptions import InvalidInput

from ..models import Vote
from . import selectors
from .services import vote_delete, vote_upsert

MAX_PREDICT_ITEMS = 500


class VoteSerializer(serializers.ModelSerializer):
    item_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Vote
        fields = ["item_id", "value", "source", "split", "created", "updated"]
        read_only_fields = fields


class VoteInputSerializer(serializers.Serializer):
    value = serializers.ChoiceField(choices=Vote.Value.choices)


class ReasonSerializer(serializers.Serializer):
    item_id = serializers.IntegerField(source="item.pk")
    value = serializers.CharField()
    similarity = serializers.FloatField()


class PredictionSerializer(serializers.Serializer):
    # The fields declare the schema; the output is built by ``item_data`` as look-alikes do (DRF's
    # per-field work on 150 nested items was most of a predict request's time). A comment, not a
    # docstring: a docstring would become the schema's description.
    item = ItemSerializer()
    p_like = serializers.FloatField()
    decision = serializers.ChoiceField(choices=["like", "dislike", "unsure"])
    because = ReasonSerializer(many=True)

    def to_representation(self, prediction) -> dict:
        return {"item": item_data(prediction.item, self.context.get("request")), "p_like": float(prediction.p_like),
                "decision": prediction.decision,
                "because": [{"item_id": reason.item.pk, "value": reason.value, "similarity": float(reason.similarity)}
                            for reason in prediction.because]}


class PredictInputSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1,
                                  max_length=MAX_PREDICT_ITEMS)


def _valid(serializer: serializers.Serializer) -> dict:
    """Validated data, or one readable 400 message."""
    if not serializer.is_valid():
        field, errors = next(iter(serializer.errors.items()))
        first = errors[0] if isinstance(errors, list) else next(iter(errors.values()))[0]
        raise InvalidInput(f"{field}: {first}")
    return serializer.validated_data


class VoteListView(generics.ListAPIView):
    """The signed-in user's own votes, newest first."""

    serializer_class = VoteSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Vote.objects.none()
        return Vote.objects.filter(user=self.request.user).order_by("-updated", "-id")


class VoteDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=VoteInputSerializer, responses=VoteSerializer,
                   summary="Like or dislike an item (idempotent; voting again changes the vote)")
    def put(self, request: Request, item_id: int) -> Response:
        data = _valid(VoteInputSerializer(data=request.data))
        vote = vote_upsert(request.user, item_id, data["value"], source=Vote.Source.API)
        return Response(VoteSerializer(vote).data)

    @extend_schema(responses={204: None}, summary="Undo your vote on an item")
    def delete(self, request: Request, item_id: int) -> Response:
        vote_delete(request.user, item_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=VoteSerializer, summary="Your vote on an item")
    def get(self, request: Request, item_id: int) -> Response:
        vote = Vote.objects.filter(user=request.user, item_id=item_id).first()
        if vote is None:
            return Response({"detail": f"You have no vote on item {item_id}."}, status=status.HTTP_404_NOT_FOUND)
        return Response(VoteSerializer(vote).data)


class FeedView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("k", int, description=f"How many items (1-{selectors.MAX_FEED}, default 20)."),
                    OpenApiParameter("collection", str, description="Collection slug (default: the one you "
                                     "voted most in).")],
        responses=PredictionSerializer(many=True),
        summary="Your unrated items, most likely liked first, with P(like), a decision and the reasons",
    )
    def get(self, request: Request) -> Response:
        k = selectors.parse_k(request.query_params.get("k"))
        collection = selectors.default_collection(request.user, request.query_params.get("collection"))
        predictions = selectors.feed(request.user, collection, k)
        return Response(PredictionSerializer(predictions, many=True, context={"request": request}).data)


class NextView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("k", int, description=f"How many items (1-{selectors.MAX_FEED}, default 10)."),
                    OpenApiParameter("collection", str, description="Collection slug (default: the one you "
                                     "voted most in).")],
        responses=PredictionSerializer(many=True),
        summary="Rate these next: the unrated items whose votes would teach your model most, across labels",
    )
    def get(self, request: Request) -> Response:
        k = selectors.parse_k(request.query_params.get("k"), default=10)
        collection = selectors.default_collection(request.user, request.query_params.get("collection"))
        answer = selectors.next_to_rate(request.user, collection, k)
        return Response(PredictionSerializer(answer.predictions, many=True, context={"request": request}).data)


class PredictView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=PredictInputSerializer, responses=PredictionSerializer(many=True),
                   summary="P(like), decision and reasons for the given items")
    def post(self, request: Request) -> Response:
        data = _valid(PredictInputSerializer(data=request.data))
        predictions = selectors.predict_items(request.user, list(dict.fromkeys(data["items"])))
        return Response(PredictionSerializer(predictions, many=True, context={"request": request}).data)
