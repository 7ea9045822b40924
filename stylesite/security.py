"""Request hygiene applied to every route: NUL bytes refused, a Content-Security-Policy on every answer.

Postgres text cannot hold a NUL byte (a query with one fails with DataError, a 500), and no
legitimate parameter contains one, so NUL is refused here, once, before any view runs: in the
path, the query string and url-encoded form bodies. JSON and multipart bodies of the API are
checked by its parsers (``stylesite.parsers``) with the same ``contains_nul``; page forms are
url-encoded.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

NUL_MESSAGE = "parameters must not contain NUL (\\x00) characters"


def contains_nul(values: Iterable[Any]) -> bool:
    """Whether any string among ``values`` (strings, lists, dicts, nested) holds a NUL character."""
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return False


def querydict_has_nul(data: Any) -> bool:
    """Whether a QueryDict (query string, form fields) has NUL in any key or value."""
    return contains_nul(key for key in data) or contains_nul(v for _key, values in data.lists() for v in values)


class RejectNulMiddleware:
    """Answers 400 to a NUL byte in the path, the query string or a url-encoded form field."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        has_nul = "\x00" in request.path or querydict_has_nul(request.GET)
        if not has_nul and request.content_type == "application/x-www-form-urlencoded" and request.method == "POST":
            has_nul = querydict_has_nul(request.POST)
        if has_nul:
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_MESSAGE}, status=400)
            return HttpResponseBadRequest(NUL_MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """Sets ``STYLESITE_CONTENT_SECURITY_POLICY`` on every response that has none (no inline scripts)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.STYLESITE_CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
