"""``GET /api/jobs/`` (staff): what the jobs page shows, as JSON."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors


class QueueSerializer(serializers.Serializer):
    name = serializers.CharField()
    purpose = serializers.CharField()
    waiting = serializers.IntegerField(allow_null=True, help_text="Tasks in the broker; null if it did not answer.")
    running = serializers.IntegerField(help_text="Images a worker holds now.")


class FailureSerializer(serializers.Serializer):
    image = serializers.IntegerField(source="pk")
    item = serializers.IntegerField(source="item_id")
    title = serializers.CharField(source="item.title")
    status = serializers.CharField()
    reason = serializers.CharField(source="error")


class CollectionJobsSerializer(serializers.Serializer):
    collection = serializers.SlugField(source="collection.slug")
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    refine_waiting = serializers.IntegerField()
    refining = serializers.IntegerField()
    failed = serializers.IntegerField()
    ready = serializers.IntegerField()
    per_minute = serializers.FloatField(help_text="Images finished per minute over the last minutes.")
    eta_seconds = serializers.IntegerField(allow_null=True)
    failures = FailureSerializer(many=True)


class JobsSerializer(serializers.Serializer):
    queues = QueueSerializer(many=True)
    collections = CollectionJobsSerializer(many=True)


class JobsView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=JobsSerializer, summary="Pipeline queues and per-collection progress (staff)")
    def get(self, request: Request) -> Response:
        return Response(JobsSerializer({"queues": selectors.queue_states(),
                                        "collections": selectors.collection_jobs()}).data)
