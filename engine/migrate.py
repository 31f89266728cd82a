"""Create or upgrade the database schema through Alembic (used by `alur init` and the tests).

The whole upgrade is one transaction (PostgreSQL runs DDL transactionally: a failed upgrade leaves the
database at the revision it had). On PostgreSQL a transaction-level advisory lock serialises concurrent
`alur init` runs (several servers started at once): the second one waits, then finds the database current.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from engine.db import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant shared by every Alur process: "alur" in ASCII.
UPGRADE_LOCK = 0x616C7572


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to `revision`; return (revision before, revision after)."""
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
