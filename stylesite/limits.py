"""Limits that must hold across every web process: request rates, concurrent work, login failures.

All state lives in the shared Redis cache (``CACHES["default"]``), so three gunicorn workers
enforce one limit, not three. Clients are told apart by ``client_ip``, which trusts
``X-Forwarded-For`` only as far as ``NUM_PROXIES`` (``STYLESITE_NUM_PROXIES``) says proxies
stand in front of the site; with the default 0 a client cannot choose its own address.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the entry ``NUM_PROXIES`` from the right of X-Forwarded-For."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = api_settings.NUM_PROXIES or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-min(proxies, len(hops))] if hops else remote


class _RatesPerRequest:
    """Reads ``DEFAULT_THROTTLE_RATES`` per request: a changed setting applies without a restart.

    (DRF's throttles copy the rates once, when the module is imported.)
    """

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # noqa: N802 - the name DRF reads
        return api_settings.DEFAULT_THROTTLE_RATES

    def get_ident(self, request: Any) -> str:
        return client_ip(request)


class UserOrIPRateThrottle(_RatesPerRequest, ScopedRateThrottle):
    """The view's ``throttle_scope`` per signed-in user (per client IP for anonymous calls)."""


class IPRateThrottle(_RatesPerRequest, SimpleRateThrottle):
    """The subclass's ``scope`` per client IP, signed in or not: new accounts get no fresh allowance."""

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def get_rate(self) -> str | None:
        """The scope's rate; a scope without one is not limited."""
        return self.THROTTLE_RATES.get(self.scope)


class ServerBusy(APIException):
    """All slots of a ``concurrency_slot`` are taken: 503 with Retry-After (the client did nothing wrong)."""

    status_code = 503
    default_detail = "The server is busy with other requests like this one; try again shortly."
    default_code = "busy"

    def __init__(self, wait: int):
        super().__init__()
        self.wait = wait  # DRF's handler turns this into the Retry-After header


@contextmanager
def concurrency_slot(name: str, *, limit: int, lease_seconds: int) -> Iterator[None]:
    """Hold one of ``limit`` slots named ``name`` across all processes, or raise ServerBusy (503).

    A Redis sorted set of holders scored by start time; holders older than ``lease_seconds``
    (a killed process) are dropped, so a crash never leaks a slot for longer than the lease.
    """
    key = cache.make_and_validate_key(f"slots:{name}")
    client = cache._cache.get_client(key, write=True)
    token, now = uuid.uuid4().hex, time.time()
    pipe = client.pipeline()
    pipe.zremrangebyscore(key, 0, now - lease_seconds)
    pipe.zadd(key, {token: now})
    pipe.zrank(key, token)
    pipe.expire(key, lease_seconds)
    rank = pipe.execute()[2]
    if rank is None or rank >= limit:
        client.zrem(key, token)
        raise ServerBusy(wait=1)
    try:
        yield
    finally:
        client.zrem(key, token)


# --- Login failures: one lockout for the login page and the token API ---------------------------

def _failure_keys(request: HttpRequest | None, username: str) -> list[tuple[str, int]]:
    from django.conf import settings

    # Hashed: a username can be any text of any length; a cache key should not be.
    user = hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    keys = [(f"login-failures:user:{user}", settings.STYLESITE_LOGIN_FAILURES_PER_USER)]
    if request is not None:
        keys.append((f"login-failures:ip:{client_ip(request)}", settings.STYLESITE_LOGIN_FAILURES_PER_IP))
    return keys


class LoginLockoutBackend:
    """First in AUTHENTICATION_BACKENDS: refuses every login attempt for a locked username or client IP.

    A username (or an address) is locked for STYLESITE_LOGIN_LOCKOUT_SECONDS once it has that many
    failed attempts; the right password does not open it early. Raising PermissionDenied stops
    ``authenticate`` before the password is checked; it answers as a wrong password would. It has no
    ``get_user``: it never signs anyone in, so sessions and ``force_login`` use ModelBackend.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **credentials: Any) -> None:
        if username is None:
            return None
        for key, limit in _failure_keys(request, username):
            if (cache.get(key) or 0) >= limit:
                raise PermissionDenied("too many failed logins; try again later")
        return None


def _count_failure(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
                   ) -> None:
    from django.conf import settings

    username = credentials.get("username")
    if not username:
        return
    for key, _limit in _failure_keys(request, str(username)):
        cache.add(key, 0, timeout=settings.STYLESITE_LOGIN_LOCKOUT_SECONDS)
        cache.incr(key)


def _clear_failures(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    cache.delete(_failure_keys(None, user.get_username())[0][0])


# Connected when the backend is loaded, which ``authenticate`` does before it can send either signal.
user_login_failed.connect(_count_failure, dispatch_uid="stylesite.limits.count_failure")
user_logged_in.connect(_clear_failures, dispatch_uid="stylesite.limits.clear_failures")
