"""Keyset pagination for the items changes feed: ordered by (updated, id), a cursor that stays put.

A page ends at the last (updated, id) it returned and the next page starts strictly after that
pair, so rows changed or added meanwhile never shift a page (unlike offsets), and rows that
share an update time (a bulk update) are neither skipped nor repeated.
"""
from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from stylesite.exceptions import InvalidInput


def updated_after_parse(text: str) -> datetime:
    """The feed's ``updated_after``: an ISO 8601 time; one without an offset is read as UTC."""
    try:
        stamp = parse_datetime(text.strip())
    except ValueError:
        stamp = None
    if stamp is None:
        raise InvalidInput(f"updated_after {text!r} is not an ISO 8601 time such as 2026-01-31T12:00:00Z "
                           "(encode '+' as %2B in a URL)")
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def cursor_encode(updated: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{updated.isoformat()}|{pk}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    """(updated, id) from a cursor this API gave; ``InvalidInput`` for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = text.rsplit("|", 1)
        updated = parse_datetime(stamp)
        if updated is None or updated.tzinfo is None:
            raise ValueError(stamp)
        return updated, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this API returned; start again without it") from exc


class ChangesPagination(BasePagination):
    page_size = 100
    max_page_size = 500

    def paginate_queryset(self, queryset: QuerySet, request: Request, view=None) -> list:
        self.request = request
        self.count = queryset.count()
        size = self._page_size(request)
        rows = queryset.order_by("updated", "id")
        cursor = request.query_params.get("cursor")
        if cursor:
            updated, pk = cursor_decode(cursor)
            rows = rows.filter(Q(updated__gt=updated) | Q(updated=updated, id__gt=pk))
        page = list(rows[: size + 1])
        self.next_cursor = cursor_encode(page[size - 1].updated, page[size - 1].pk) if len(page) > size else None
        return page[:size]

    def _page_size(self, request: Request) -> int:
        raw = request.query_params.get("page_size")
        if raw is None:
            return self.page_size
        if not raw.isdigit() or int(raw) == 0:
            raise InvalidInput("page_size must be a whole number from 1")
        return min(int(raw), self.max_page_size)

    def get_next_link(self) -> str | None:
        if self.next_cursor is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), "cursor", self.next_cursor)

    def get_paginated_response(self, data) -> Response:
        return Response({"count": self.count, "next": self.get_next_link(), "previous": None, "results": data})
