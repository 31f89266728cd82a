"""The PostgreSQL pool pings only connections that sat idle (engine/db.py): a server-side disconnect is still
survived without the user seeing it once a connection has been idle, and costs at most the statement that
hits it when the connection was returned moments ago."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engine import db as dbmod
from engine.db import Database
from tests.conftest import _drop_schema, make_database


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Database]:
    database = make_database("postgres", tmp_path)
    yield database
    _drop_schema(database)


def _backend_pid(db: Database) -> int:
    with db.read() as s:
        return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(db: Database, pid: int) -> None:
    other = Database(db.url)  # a connection of its own: the pooled one is the victim
    with other.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def _count_pings(db: Database) -> list[str]:
    """Calls of the dialect's ping (it runs on the DBAPI connection, below SQLAlchemy's statement events)."""
    pings: list[str] = []
    original = db.engine.dialect.do_ping

    def counted(dbapi_connection):  # type: ignore[no-untyped-def]
        pings.append("ping")
        return original(dbapi_connection)

    db.engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


def test_recently_used_connection_is_not_pinged(pg: Database) -> None:
    _backend_pid(pg)  # one connection made (pinged once: it is new) and returned to the pool
    pings = _count_pings(pg)
    for _ in range(5):
        _backend_pid(pg)
    assert pings == []


def test_idle_connection_is_pinged_and_a_dead_one_replaced(pg: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _backend_pid(pg)
    _terminate(pg, pid)
    monkeypatch.setattr(dbmod, "PING_AFTER_IDLE_SECONDS", 0.0)  # "idle for long enough"
    pings = _count_pings(pg)
    new_pid = _backend_pid(pg)  # the ping finds the dead connection; the pool connects anew; no error
    assert new_pid != pid
    assert pings, "an idle connection must be pinged before use"


def test_dead_recent_connection_fails_one_statement_then_the_pool_recovers(pg: Database) -> None:
    pid = _backend_pid(pg)
    _terminate(pg, pid)
    with pytest.raises(OperationalError):
        _backend_pid(pg)  # returned moments ago, so not pinged: this statement meets the closed socket
    assert _backend_pid(pg) != pid  # the disconnect invalidated the pool: the next request works
