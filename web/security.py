"""Who is signed in (a Flask-Login user wrapping the engine's `Actor`), the sign-in rate limit, sign-out that
really ends a session, the production settings check (`ALUR_ENV`) and the security headers."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request, session
from flask_login import UserMixin
from werkzeug.routing import IntegerConverter

from engine.accounts import Actor


@dataclass
class WebUser(UserMixin):
    actor: Actor
    full_name: str = ""
    locale: str = "id"
    email: str | None = None
    password_fingerprint: str = ""
    unread: int | None = None  # the bell's count, read with the user at the start of the request
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def username(self) -> str:
        return self.actor.username

    def get_id(self) -> str:
        # The fingerprint of the password hash rides in the session: changing the password ends other sessions.
        return f"{self.actor.username}|{self.password_fingerprint}"

    @property
    def display_name(self) -> str:
        return self.full_name or self.actor.username


def load_web_user(user_id: str) -> WebUser | None:
    if not session_is_live():
        session.clear()  # a signed-out session's cookie, replayed: it must not come back after the purge
        return None
    username, _, fingerprint = user_id.partition("|")
    found = current_app.extensions["alur"].session_user(username)
    if found is None:
        return None
    actor, info = found
    if info["password_fingerprint"] != fingerprint:
        return None
    return WebUser(actor=actor, full_name=info["full_name"], locale=info["locale"] or "id",
                   email=info["email"], password_fingerprint=info["password_fingerprint"], unread=info["unread"])


class LoginLimiter:
    """Failed password checks (web sign-in, REST Basic, the current password on /kata-sandi) in a sliding
    window, counted twice: per (username, client address), and per client address whatever the username,
    so a stream of made-up names (each costing a full argon2 hash) is stopped too. A success clears only its
    own (username, address) count: signing in to one's own account between guesses does not reset the address.
    In-process: with several gunicorn workers each keeps its own count, so the effective limits are
    workers × the limits (nginx's limit_req in deploy/nginx bounds the total)."""

    def __init__(self, max_failures: int = 5, window_seconds: float = 15 * 60,
                 max_failures_per_address: int = 30):
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._by_address: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, table: dict[Any, deque[float]], key: Any, now: float) -> deque[float]:
        q = table.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def _blocking(self, username: str, address: str, now: float) -> list[tuple[deque[float], int]]:
        """The (failures, limit) pairs that are full for this attempt."""
        account = self._recent(self._failures, (username.strip().lower(), address), now)
        by_address = self._recent(self._by_address, address, now)
        return [(q, limit) for q, limit in ((account, self.max_failures), (by_address, self.max_failures_per_address))
                if len(q) >= limit]

    def blocked(self, username: str, address: str) -> bool:
        with self._lock:
            return bool(self._blocking(username, address, time.monotonic()))

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until a blocked (username, address) may try again (0 if not blocked): until enough of the
        failures keeping each full count have left the window."""
        now = time.monotonic()
        with self._lock:
            full = self._blocking(username, address, now)
            if not full:
                return 0
            return max(1, int(max(q[len(q) - limit] + self.window - now for q, limit in full)) + 1)

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(self._failures, (username.strip().lower(), address), now).append(now)
            self._recent(self._by_address, address, now).append(now)
            tables: tuple[dict[Any, deque[float]], ...] = (self._failures, self._by_address)
            for table in tables:
                if len(table) > 100_000:  # a flood of made-up names or addresses must not eat memory
                    for k in [k for k, q in table.items() if not q or q[-1] <= now - self.window]:
                        del table[k]

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop((username.strip().lower(), address), None)


# ------------------------------------------------------------------------------------------------ sign-out

_SID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class SessionRevocations:
    """Session ids ended by signing out. Sessions are signed cookies (nothing is kept on the server), so
    without this list a copy of the cookie taken before sign-out would still work until it expires.

    One empty file per ended session under `<instance>/revoked-sessions/`: every gunicorn worker on the
    machine sees it (with several servers the instance folder is shared anyway, for the attachments).
    Files older than the session lifetime are removed: a cookie that old is refused by its signature."""

    def __init__(self, root: Path, lifetime_seconds: float):
        self.root = Path(root)
        self.lifetime = lifetime_seconds
        self._last_purge = 0.0

    def _path(self, sid: str) -> Path | None:
        return self.root / sid if _SID_RE.fullmatch(sid) else None

    def revoke(self, sid: str | None) -> None:
        path = self._path(sid or "")
        if path is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        path.touch()
        self._purge()

    def is_revoked(self, sid: str | None) -> bool:
        path = self._path(sid or "")
        return path is None or path.exists()

    def _purge(self) -> None:
        now = time.time()
        if now - self._last_purge < 3600:
            return
        self._last_purge = now
        for path in self.root.iterdir():
            try:
                if now - path.stat().st_mtime > self.lifetime + 3600:
                    path.unlink()
            except FileNotFoundError:  # another worker purged it first
                pass


def session_is_live() -> bool:
    """The current session was started by a sign-in (it carries an id) and was not signed out since."""
    revocations: SessionRevocations = current_app.extensions["alur_session_revocations"]
    return not revocations.is_revoked(session.get("sid"))


# ------------------------------------------------------------------------------------------------ settings

ENVIRONMENTS = ("development", "test", "production")
MIN_SECRET_KEY_CHARS = 32


class InsecureConfiguration(RuntimeError):
    """Production settings that must not be served; the message says what to set."""


def environment(config: Mapping[str, Any]) -> str:
    """`ALUR_ENV` (app config first, then the environment); `development` when unset. A misspelt value is
    refused rather than silently treated as development."""
    value = str(config.get("ALUR_ENV") or os.environ.get("ALUR_ENV") or "development").strip().lower()
    if value not in ENVIRONMENTS:
        raise InsecureConfiguration(f"ALUR_ENV={value!r} is not one of {', '.join(ENVIRONMENTS)}")
    return value


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def apply_environment(app: Flask, explicit: Mapping[str, Any]) -> None:
    """Settings that follow from `ALUR_ENV`, checked before anything is served.

    Production (`ALUR_ENV=production`) means: the secret key comes from `ALUR_SECRET_KEY` (at least
    MIN_SECRET_KEY_CHARS characters; never the generated file, which several servers would not share),
    cookies are `Secure` unless `ALUR_SECURE_COOKIES=0` is set explicitly, and debug, testing and a disabled
    CSRF check are refused. Raises InsecureConfiguration naming what is wrong."""
    env = environment(app.config)
    app.config["ALUR_ENV"] = env
    if env == "production":
        problems = []
        key = str(explicit.get("SECRET_KEY") or os.environ.get("ALUR_SECRET_KEY") or "")
        if not key:
            problems.append("ALUR_SECRET_KEY is not set: generate one with "
                            "python -c 'import secrets; print(secrets.token_urlsafe(48))'")
        elif len(key) < MIN_SECRET_KEY_CHARS:
            problems.append(f"ALUR_SECRET_KEY is too short ({len(key)} characters; at least "
                            f"{MIN_SECRET_KEY_CHARS})")
        if app.debug or _truthy(os.environ.get("FLASK_DEBUG", "")):
            problems.append("debug mode is on (FLASK_DEBUG / DEBUG): it shows code and data to visitors")
        if app.config.get("TESTING"):
            problems.append("TESTING is on")
        if not app.config.get("WTF_CSRF_ENABLED", True):
            problems.append("the CSRF check is off (WTF_CSRF_ENABLED)")
        if problems:
            raise InsecureConfiguration("refusing to start in production (ALUR_ENV=production): "
                                        + "; ".join(problems))
        app.config["SECRET_KEY"] = key
        if "SESSION_COOKIE_SECURE" not in explicit and os.environ.get("ALUR_SECURE_COOKIES") != "0":
            app.config["SESSION_COOKIE_SECURE"] = True
    if app.config.get("SESSION_COOKIE_SECURE"):
        app.config["REMEMBER_COOKIE_SECURE"] = True


# ------------------------------------------------------------------------------------------------ headers

# Only our own files: no inline script, no eval (bpmn-js's viewer needs neither), no plugins, no <base>,
# forms post only here, and no framing (the SOP document sets its own policy for its iframe).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
                      "microphone=(), payment=(), usb=()")
HSTS = "max-age=31536000"


def add_security_headers(response: Response) -> Response:
    """after_request: the headers every response carries (a view may set a stricter one of its own)."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")  # pages show personal data
    return response


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` capped at the database's largest integer: a longer number in a URL is a 404, not an
    OverflowError in the database driver (a 500)."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = None,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, 2**63 - 1 if max is None else max, signed)
