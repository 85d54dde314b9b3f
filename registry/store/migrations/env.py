"""Alembic environment: runs migrations on the connection registry.schema hands it."""

from __future__ import annotations

from alembic import context

from registry.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # pragma: no cover - we always pass one
        raise RuntimeError("registry migrations run through registry.schema.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
