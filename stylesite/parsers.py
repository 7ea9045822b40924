"""The API's request parsers: bounded JSON, and no NUL bytes in any parsed field.

Python's ``json`` recurses once per nesting level, so a body of a few thousand ``[`` raised
RecursionError (a 500) on every JSON route, the anonymous token route included. Bodies are
objects of flat fields here; anything nested deeper than ``STYLESITE_JSON_MAX_DEPTH`` or not an
object at the top is refused with 400 before a view sees it.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

from .security import NUL_MESSAGE, querydict_has_nul, contains_nul


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` and ``{}`` are 1), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


class SafeJSONParser(JSONParser):
    """JSON objects only, nested at most ``STYLESITE_JSON_MAX_DEPTH`` deep, with no NUL in any string."""

    def parse(self, stream, media_type=None, parser_context=None) -> dict[str, Any]:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply") from None
        if not isinstance(data, dict):
            raise ParseError("JSON parse error - the body must be a JSON object")
        if json_depth(data) > settings.STYLESITE_JSON_MAX_DEPTH:
            raise ParseError(f"JSON parse error - the body is nested more than "
                             f"{settings.STYLESITE_JSON_MAX_DEPTH} levels deep")
        if contains_nul([data]):
            raise ParseError(NUL_MESSAGE)
        return data


class SafeFormParser(FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if querydict_has_nul(data):
            raise ParseError(NUL_MESSAGE)
        return data


class SafeMultiPartParser(MultiPartParser):
    """Multipart forms: NUL refused in the text fields and in uploaded files' names."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        names = [f.name or "" for _key, files in parsed.files.lists() for f in files]
        if querydict_has_nul(parsed.data) or contains_nul(names) or contains_nul(list(parsed.files)):
            raise ParseError(NUL_MESSAGE)
        return parsed
