"""Alembic environment. `engine.migrate` passes the connection in; the CLI never needs an alembic.ini."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from engine.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    options = {"sqlalchemy.url": config.get_main_option("sqlalchemy.url")}
    connectable = engine_from_config(options, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as conn:
        _run(conn)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds tables for it.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
