"""Domain errors and their HTTP meaning, in one place.

Services raise ``DomainError`` subclasses; the API handler and, for pages, ``DomainErrorMiddleware``
turn them into 400/404/409 answers with a readable message, so no domain error reaches a user as a 500.
A request that waited past the database pool's timeout for a connection (overload: every pooled
connection busy) answers 503 with Retry-After the same two ways: the client did nothing wrong.
"""
from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A request the domain refuses; ``message`` is safe to show to the user."""

    http_status = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    pass


class NotFound(DomainError):
    http_status = status.HTTP_404_NOT_FOUND


class Conflict(DomainError):
    http_status = status.HTTP_409_CONFLICT


class NotReady(DomainError):
    """The data needed is still being processed (e.g. no embeddings yet)."""

    http_status = status.HTTP_409_CONFLICT


DATABASE_BUSY = "The server is too busy to reach its database right now; try again shortly."
DATABASE_BUSY_RETRY_AFTER = "1"  # seconds; the pool frees a connection as soon as any request ends


def database_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is the connection pool's timeout (Django re-raises it as an OperationalError)."""
    from psycopg_pool import PoolTimeout

    return isinstance(exc, PoolTimeout) or isinstance(exc.__cause__, PoolTimeout)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response({"detail": exc.message}, status=exc.http_status)
    if database_busy(exc):
        return Response({"detail": DATABASE_BUSY}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": DATABASE_BUSY_RETRY_AFTER})
    return exception_handler(exc, context)


class DomainErrorMiddleware:
    """Pages: a DomainError a view lets through becomes its HTTP answer (NotFound renders the 404 page);
    the pool's timeout becomes 503 with Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, NotFound):
            raise Http404(exc.message)
        if isinstance(exc, DomainError):
            return HttpResponse(exc.message, status=exc.http_status, content_type="text/plain; charset=utf-8")
        if database_busy(exc):
            return HttpResponse(DATABASE_BUSY, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                                content_type="text/plain; charset=utf-8",
                                headers={"Retry-After": DATABASE_BUSY_RETRY_AFTER})
        return None
