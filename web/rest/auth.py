"""Who calls: HTTP Basic with an Alur account, or `Authorization: Bearer <token>` (`alur token create USER`).

- No credentials, or the literal `undefined` Camunda Modeler sends when none are set: 401 with
  `WWW-Authenticate` — Basic for non-browser clients, a Bearer challenge for browsers so that they never
  prompt and store credentials (web/rest/browser.py, which also holds the rule against forged requests).
- Only the Authorization header counts: the web's session cookie is never accepted here, which is why
  this blueprint can be exempt from CSRF and may answer any origin (CORS) without exposing sessions.
- A Basic password is verified with argon2 once, then the (header → user, credentials fingerprint) result is
  remembered for BASIC_CACHE_SECONDS in this process, so scripted clients do not pay argon2 on every call.
  The user's roles and fingerprint are loaded on every request (the same statements): a password change,
  reset or disable anywhere ends the cached entry at once.
- Failed Basic sign-ins count against the web's sign-in rate limits (per username and address, and per
  address); argon2 runs under the process-wide hashing bound (503 with Retry-After when it is full).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time

from flask import Response, current_app, g, request

from engine.accounts import Actor, HashingBusy
from engine.errors import NotFound
from engine.tokens import verify_token
from web.rest import browser
from web.rest.common import service
from web.rest.errors import RestError

BASIC_CACHE_SECONDS = 60.0
_NO_CREDENTIALS = {"", "undefined", "null", "basic undefined", "bearer undefined", "basic", "bearer"}
CORS_ALLOW_HEADERS = "Accept, Authorization, Content-Type, X-Requested-With"
CORS_ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"


class _BasicCache:
    """(header digest) -> (username, credentials fingerprint), for BASIC_CACHE_SECONDS."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[str, str] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[2] < time.monotonic():
                self._items.pop(key, None)
                return None
            return hit[0], hit[1]

    def put(self, key: str, username: str, fingerprint: str) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (username, fingerprint, time.monotonic() + BASIC_CACHE_SECONDS)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


_basic_cache = _BasicCache()


def unauthorized(message: str = "Unauthorized: give credentials (HTTP Basic or a Bearer token)") -> RestError:
    return RestError(401, message, "AuthenticationException")


def _current_actor(username: str) -> tuple[Actor, str]:
    try:
        return service().rest_actor(username)
    except NotFound as exc:
        raise unauthorized("Unauthorized: the account is not active") from exc


def _actor_from_basic(value: str) -> Actor:
    key = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    cached = _basic_cache.get(key)
    if cached is not None:
        # The fingerprint is read from the database with the actor: a password change, reset or disable
        # (in any process) makes it differ, and the old password is checked (and refused) again at once.
        actor, fingerprint = _current_actor(cached[0])
        if fingerprint == cached[1]:
            return actor
        _basic_cache.drop(key)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise unauthorized("Unauthorized: malformed Basic credentials") from exc
    username, sep, password = decoded.partition(":")
    username = username.strip().lower()[:64]
    if not sep or not username or not password or len(password) > 1024:
        raise unauthorized("Unauthorized: malformed Basic credentials")
    limiter = current_app.extensions.get("alur_login_limiter")
    address = request.remote_addr or "?"
    if limiter is not None and limiter.blocked(username, address):
        raise RestError(429, "Too many failed sign-ins; wait 15 minutes", "AuthenticationException",
                        retry_after=limiter.retry_after(username, address))
    try:
        verified = service().verify_credentials(username, password)
    except HashingBusy as exc:  # every hashing slot taken: refused at once rather than queued
        raise RestError(503, "The server is busy checking passwords; try again in a few seconds",
                        "AuthenticationException", retry_after=exc.retry_after) from exc
    if verified is None:
        if limiter is not None:
            limiter.failed(username, address)
        raise unauthorized("Unauthorized: wrong username or password")
    if limiter is not None:
        limiter.succeeded(username, address)
    actor, fingerprint = _current_actor(username)
    if fingerprint != verified:  # the password changed between the check and now
        raise unauthorized("Unauthorized: wrong username or password")
    _basic_cache.put(key, username, fingerprint)
    return actor


def _actor_from_bearer(value: str) -> Actor:
    svc = service()
    with svc.db.read() as s:
        username = verify_token(s, value.strip(), now=svc.clock())
    if username is None:
        raise unauthorized("Unauthorized: unknown or revoked token")
    return _current_actor(username)[0]


def authenticate() -> Actor:
    header = request.headers.get("Authorization", "")
    if header.strip().lower() in _NO_CREDENTIALS:
        raise unauthorized()
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "basic":
        return _actor_from_basic(value)
    if scheme.lower() == "bearer":
        return _actor_from_bearer(value)
    raise unauthorized(f"Unauthorized: unsupported authorization scheme {scheme[:20]!r}")


def require_actor() -> None:
    """before_request: set g.rest_actor or refuse with 401."""
    g.rest_actor = authenticate()


def preflight() -> Response:
    response = Response(status=204)
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def add_cors_headers(response: Response) -> Response:
    """Any origin may call, `null` included (Camunda Modeler's file:// page): credentials travel in the
    Authorization header only, never in cookies. Never `Access-Control-Allow-Credentials`: without it a
    browser refuses to send a preflighted request with its stored credentials, which web/rest/browser.py's
    rule relies on; the requests that need no preflight are that rule's business."""
    origin = request.headers.get("Origin")
    response.headers["Access-Control-Allow-Origin"] = origin or "*"
    response.headers["Vary"] = "Origin"
    response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    response.headers["Access-Control-Expose-Headers"] = "Content-Type, WWW-Authenticate"
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = browser.challenge(request)
    return response
