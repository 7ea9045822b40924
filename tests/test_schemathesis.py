"""Schemathesis over the OpenAPI schema, against the Django app in process (WSGI), with and without a token.

Every operation in /api/schema/ gets a few generated requests (valid and invalid); none may answer
5xx, and every documented answer must match its schema and content type. The token belongs to a
staff user so the write routes are exercised too. Kept small (STYLESITE_FUZZ_EXAMPLES, default 5
per operation and client) so it runs inside ``make test``; raise it for a deeper run (``make fuzz``).
"""
from __future__ import annotations

import json
import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

EXAMPLES = int(os.environ.get("STYLESITE_FUZZ_EXAMPLES", "5"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def _openapi() -> schemathesis.BaseSchema:
    """The schema /api/schema/ serves, generated in process (schemathesis's fixture loader fails on pytest 9)."""
    from django.core.handlers.wsgi import WSGIHandler
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    spec = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.app = WSGIHandler()
    return loaded


schema = _openapi()


@pytest.fixture(autouse=True)
def _app_under_test(db, settings, collection, make_item):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    # Throttle counters of this run stay apart from other tests' (the Redis cache is shared).
    default = settings.CACHES["default"]
    settings.CACHES = {**settings.CACHES, "default": {**default, "KEY_PREFIX": f"{default['KEY_PREFIX']}-"
                                                                              f"{uuid.uuid4().hex[:8]}"}}
    for label in ("dress", "shirt"):
        make_item(label=label, gender="W")
    # As Django's test client does: requests must not close the test's connection (and its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def staff_token(staff_user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=staff_user).key


@schema.parametrize()
@FUZZ
def test_api_without_a_token(case):
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_api_with_a_staff_token(case, staff_token):
    case.call_and_validate(headers={"Authorization": f"Token {staff_token}"}, checks=CHECKS)
