"""Faults of the machine rather than of the request: the database is locked, busy, unreachable or dropped the
connection; the disk is full; the attachment folder cannot be written. The same request may well succeed a
little later, and nothing of it was saved (its transaction rolled back, the file written for it removed).

`classify()` names such a fault (or returns None: a bug, not a fault). `Unavailable` carries it to the web
(HTTP 503 with Retry-After, the form shown again with what the user typed), the REST API (a Camunda-style
JSON 503) and the command line (a message and exit status 1). The retry rule for dropped connections lives
in engine/db.py (`Database.attempt`).
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass, replace

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from engine.errors import AlurError

# kind -> (what happened, for logs, the CLI and the REST message; seconds a client should wait)
KINDS: dict[str, tuple[str, int]] = {
    "locked": ("the database is locked by another write", 5),
    "busy": ("the database is busy", 5),
    "disconnected": ("the connection to the database was lost", 5),
    "db_down": ("the database cannot be reached", 30),
    "disk_full": ("the server's storage is full", 60),
    "read_only": ("the server's storage is read-only", 60),
    "no_permission": ("the server may not write to its storage folder", 60),
    "io_error": ("the server's storage reported an I/O error", 60),
}
STORAGE_KINDS = frozenset({"disk_full", "read_only", "no_permission", "io_error"})


@dataclass(frozen=True)
class Fault:
    kind: str
    detail: str  # the original error, for the operator's log
    # Set by `Database.attempt`: a write transaction of the request committed before the fault (`partly_saved`)
    # or failed during its COMMIT, so the server may have stored it (`outcome_unknown`).
    partly_saved: bool = False
    outcome_unknown: bool = False

    @property
    def summary(self) -> str:
        return KINDS[self.kind][0]

    @property
    def retry_after(self) -> int:
        return KINDS[self.kind][1]

    @property
    def nothing_saved(self) -> bool:
        return not (self.partly_saved or self.outcome_unknown)

    def with_outcome(self, *, partly_saved: bool, outcome_unknown: bool) -> Fault:
        return replace(self, partly_saved=partly_saved, outcome_unknown=outcome_unknown)


class Unavailable(AlurError):
    """A fault (see the module docstring): try again later."""

    def __init__(self, fault: Fault):
        self.fault = fault
        saved = "nothing was saved" if fault.nothing_saved else (
            "it could not be confirmed whether the change was saved" if fault.outcome_unknown
            else "part of the request was saved")
        super().__init__(f"{fault.summary}; {saved}; try again in a moment")


_OS_KINDS = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EROFS: "read_only",
             errno.EACCES: "no_permission", errno.EPERM: "no_permission", errno.EIO: "io_error"}
# SQLite reports its faults only as message texts (sqlite3.OperationalError).
_SQLITE_MESSAGES = (("database is locked", "locked"), ("database table is locked", "locked"),
                    ("database or disk is full", "disk_full"), ("readonly database", "read_only"),
                    ("disk i/o error", "io_error"), ("unable to open database file", "db_down"))


def _pg_kind(sqlstate: str) -> str | None:
    """PostgreSQL SQLSTATE classes that mean "not now" rather than "wrong request"."""
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03"):  # connection lost / shutting down
        return "db_down"
    if sqlstate == "53100":
        return "disk_full"
    if sqlstate.startswith("53") or sqlstate in ("57014", "40001", "40P01"):  # resources, timeout, deadlock
        return "busy"
    if sqlstate == "55P03":  # lock_not_available
        return "locked"
    return None


def _classify_one(exc: BaseException) -> str | None:
    if isinstance(exc, PoolTimeout):  # every pooled connection in use for pool_timeout seconds
        return "busy"
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return "disconnected"
        orig = exc.orig
        if isinstance(orig, sqlite3.Error):
            text = str(orig).lower()
            return next((kind for needle, kind in _SQLITE_MESSAGES if needle in text), None)
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if sqlstate:
            return _pg_kind(str(sqlstate))
        # psycopg raises OperationalError without a SQLSTATE only for client-side connection failures.
        if type(orig).__name__ == "OperationalError":
            return "db_down"
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        return _OS_KINDS.get(exc.errno)
    return None


def classify(exc: BaseException) -> Fault | None:
    """The fault behind `exc` (or behind what it was raised `from`), or None."""
    if isinstance(exc, Unavailable):
        return exc.fault
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        kind = _classify_one(seen)
        if kind is not None:
            return Fault(kind, f"{type(seen).__name__}: {seen}"[:500])
        seen = seen.__cause__
    return None
