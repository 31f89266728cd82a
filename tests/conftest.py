"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when ALUR_TEST_DATABASE_URL is set),
a controllable clock, and an `Alur` service over both."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.db import Database
from engine.migrate import upgrade

DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("ALUR_TEST_DATABASE_URL")
_schemas = itertools.count()


class FakeClock:
    """A clock the test moves by hand; the service and the timers read it instead of the wall clock."""

    def __init__(self, start: datetime | None = None):
        # Monday 2026-11-23 09:00 WIB: inside working hours.
        self.now = start or datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def _postgres_in_fresh_schema(url: str) -> Database:
    """A database whose search_path is a schema of its own, so parallel test runs never collide."""
    schema = f"t_{os.getpid()}_{next(_schemas)}"
    admin = Database(url)
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in url else "?"
    db = Database(f"{url}{sep}options=-csearch_path%3D{schema}")
    db.test_schema = schema  # type: ignore[attr-defined]
    return db


def _drop_schema(db: Database) -> None:
    schema = getattr(db, "test_schema", None)
    db.dispose()
    if schema and PG_URL:
        admin = Database(PG_URL)
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def make_database(kind: str, tmp_path: Path) -> Database:
    if kind == "postgres":
        if not PG_URL:
            pytest.skip("PostgreSQL tests need ALUR_TEST_DATABASE_URL (CI sets it)")
        db = _postgres_in_fresh_schema(PG_URL)
    else:
        db = Database(f"sqlite:///{tmp_path / 'alur.sqlite3'}")
    upgrade(db)
    return db


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = make_database(request.param, tmp_path)
    yield database
    _drop_schema(database)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = make_database("sqlite", tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
