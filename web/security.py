"""Who is signed in (a Flask-Login user wrapping the engine's `Actor`) and the sign-in rate limit."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_login import UserMixin

from engine.accounts import Actor


@dataclass
class WebUser(UserMixin):
    actor: Actor
    full_name: str = ""
    locale: str = "id"
    email: str | None = None
    password_fingerprint: str = ""
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
    username, _, fingerprint = user_id.partition("|")
    found = current_app.extensions["alur"].session_user(username)
    if found is None:
        return None
    actor, info = found
    if info["password_fingerprint"] != fingerprint:
        return None
    return WebUser(actor=actor, full_name=info["full_name"], locale=info["locale"] or "id",
                   email=info["email"], password_fingerprint=info["password_fingerprint"])


class LoginLimiter:
    """Failed sign-ins per (username, client address) in a sliding window. In-process: with several
    gunicorn workers each keeps its own count, so the effective limit is workers × max_failures."""

    def __init__(self, max_failures: int = 5, window_seconds: float = 15 * 60):
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked(self, username: str, address: str) -> bool:
        key = (username.strip().lower(), address)
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.max_failures

    def failed(self, username: str, address: str) -> None:
        key = (username.strip().lower(), address)
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # a flood of made-up names must not eat memory
                for k in [k for k, q in self._failures.items() if not q or q[-1] <= now - self.window]:
                    del self._failures[k]

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop((username.strip().lower(), address), None)
