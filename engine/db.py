"""Database connection: SQLite by default (WAL, one writer at a time), PostgreSQL in production.

Write transactions on SQLite begin with BEGIN IMMEDIATE so two writers never both read a version and then
fail to upgrade their lock mid-transaction; reads stay deferred and run beside the writer thanks to WAL.

On PostgreSQL two things keep round trips down (measured in docs/benchmarks.md, "Load test"):
- `read()` runs in autocommit. Under READ COMMITTED (PostgreSQL's default) every statement takes its own
  snapshot whether or not it is inside a transaction, so a read-only block sees exactly what it saw before;
  it just no longer pays a BEGIN and a COMMIT round trip. Anything that locks or writes uses `write()`.
- `pinned()` (the web app wraps each request in it): the request's `read()`/`write()` blocks share one pooled
  connection, checked out on first use, so the pool's liveness ping runs once per request instead of once
  per block. A block opened inside another block on the same thread takes its own connection, as before.

`attempt()` runs a whole request and retries it once when the connection dropped, under the rule written
there: only when nothing of the request may have been committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from engine import faults

WRITE_OPTION = "alur_write"
# How long a SQLite writer waits for another one before "database is locked" (a 503 "try again" page).
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

log = logging.getLogger("alur.db")
T = TypeVar("T")


def make_engine(url: str, *, echo: bool = False, sqlite_busy_timeout: float | None = None) -> Engine:
    if url.startswith("sqlite"):
        if sqlite_busy_timeout is None:
            sqlite_busy_timeout = SQLITE_BUSY_TIMEOUT_SECONDS
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo,
                               connect_args={"timeout": sqlite_busy_timeout, "check_same_thread": False})
        _configure_sqlite(engine, sqlite_busy_timeout)
        return engine
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20)
    _ping_idle_connections(engine)
    return engine


# A pooled connection that went back to the pool less than this long ago is handed out without a ping.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping`, but only for connections that sat idle in the pool: under load every
    checkout would otherwise cost a `SELECT 1` round trip (3 per task completion through the web). A
    connection returned moments ago was alive then; if the server restarted in between, the failing
    statement's disconnect error invalidates the whole pool, so only requests already underway see it."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["alur_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        since = record.info.get("alur_idle_since")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc)) from exc  # the pool replaces it and checks out again
        if not alive:
            raise DisconnectionError("ping failed")


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own handling defers it badly).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class _Pin:
    """One pooled connection, checked out when first asked for."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.conn: Connection | None = None

    def connection(self) -> Connection:
        if self.conn is not None and self.conn.invalidated:  # it met a dropped connection: start afresh
            self.close()
        if self.conn is None or self.conn.closed:
            self.conn = self.engine.connect()
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()  # rolls back anything left open and returns it to the pool
            self.conn = None


@dataclass
class _Journal:
    """How far one `attempt()`'s write transactions got."""

    commits_sent: int = 0  # write blocks whose body finished, so their COMMIT was sent
    commits_done: int = 0  # ... and came back


class Database:
    """Owns the engine and hands out sessions: one transaction per `read()` or `write()` block."""

    def __init__(self, url: str, *, echo: bool = False, sqlite_busy_timeout: float | None = None):
        self.url = url
        self.engine = make_engine(url, echo=echo, sqlite_busy_timeout=sqlite_busy_timeout)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        reader = self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read = sessionmaker(reader, expire_on_commit=False)
        writer = self.engine.execution_options(**{WRITE_OPTION: True})
        self._write = sessionmaker(writer, expire_on_commit=False)
        self._pin: ContextVar[_Pin | None] = ContextVar(f"alur_db_pin_{id(self)}", default=None)
        self._journal: ContextVar[_Journal | None] = ContextVar(f"alur_db_journal_{id(self)}", default=None)

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Within this block, this thread's `read()`/`write()` blocks share one connection (see the module
        docstring). No effect on SQLite, or when already pinned."""
        if self.is_sqlite or self._pin.get() is not None:
            yield
            return
        pin = _Pin(self.engine)
        token = self._pin.set(pin)
        try:
            yield
        finally:
            self._pin.reset(token)
            pin.close()

    def _pinned(self, *, autocommit: bool) -> Connection | None:
        pin = self._pin.get()
        if pin is None:
            return None
        conn = pin.connection()
        if conn.in_transaction():  # a block inside another block: it gets its own connection
            return None
        conn.execution_options(isolation_level="AUTOCOMMIT" if autocommit else conn.default_isolation_level)
        return conn

    @contextmanager
    def read(self) -> Iterator[Session]:
        conn = self._pinned(autocommit=True)
        with (self._read() if conn is None else Session(conn, expire_on_commit=False)) as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        conn = self._pinned(autocommit=False)
        journal = self._journal.get()
        with (self._write() if conn is None else Session(conn, expire_on_commit=False)) as session:
            with session.begin():
                yield session
                if journal is not None:  # reached only when the body succeeded: the COMMIT follows
                    journal.commits_sent += 1
            if journal is not None:
                journal.commits_done += 1

    def attempt(self, run: Callable[[], T], *, before_retry: Callable[[], None] | None = None) -> T:
        """Run `run` (a whole request: any number of read/write blocks) and turn a fault into
        `faults.Unavailable`.

        The retry rule: when a statement fails because the connection dropped (the database restarted or
        failed over, an idle connection was killed, `pg_terminate_backend`), and no write transaction of this
        run had sent its COMMIT yet, `run` is called once more on a fresh connection. That is safe: a read
        changes nothing, and the server rolls back a transaction whose connection dies before COMMIT. Once a
        COMMIT was sent it may have been applied even though its answer was lost, so running again could do
        the change twice: that run is not retried, and the fault says the outcome is unknown. The pool's
        liveness ping (`_ping_idle_connections`) covers only idle connections; this covers the rest. Other
        faults (locked, disk full, ...) are not retried here: the user is asked to try again."""
        try:
            return self._journaled(run)
        except _Retry as first:
            log.warning("database connection lost (%s); running the request once more on a new connection",
                        first.error.orig)
        pin = self._pin.get()
        if pin is not None:
            pin.close()
        if before_retry is not None:
            before_retry()
        return self._journaled(run, retry=False)

    def _journaled(self, run: Callable[[], T], *, retry: bool = True) -> T:
        journal = _Journal()
        token = self._journal.set(journal)
        try:
            return run()
        except Exception as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated and retry and not journal.commits_sent:
                raise _Retry(exc) from exc
            fault = faults.classify(exc)
            if fault is None:
                raise
            fault = fault.with_outcome(partly_saved=journal.commits_done > 0,
                                       outcome_unknown=journal.commits_sent > journal.commits_done)
            raise faults.Unavailable(fault) from exc
        finally:
            self._journal.reset(token)

    def dispose(self) -> None:
        self.engine.dispose()


class _Retry(Exception):
    def __init__(self, error: DBAPIError):
        super().__init__(str(error))
        self.error = error
