"""Alembic environment of the registry: run by `slidegate.registry.engine.migrate` with an open
connection (config.attributes["connection"]), or by `alembic -c alembic.ini` with a URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from slidegate.registry.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # the alembic command line: its own engine from the ini's URL
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            _migrate(conn)
        return
    _migrate(connection)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite: ALTER TABLE through copies
    )
    with context.begin_transaction():
        context.run_migrations()


run()
