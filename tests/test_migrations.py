"""The Alembic head and the models describe the same schema: a column or index added to one only fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.db import Database
from engine.migrate import upgrade
from engine.models import Base


def test_head_schema_matches_the_models(db: Database) -> None:
    upgrade(db)
    with db.engine.connect() as conn:
        opts = {"version_table_schema": None}
        if db.engine.dialect.name == "postgresql":
            opts["include_schemas"] = False
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diff == []
