"""The database schema: Alembic migrations build it, and a server refuses a schema it was not built for."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from clearance.errors import StorageError
from registry.api import server
from registry.setup import init_registry, migrate
from registry.store import schema
from registry.store.db import Database
from registry.store.models import Base

pytestmark = pytest.mark.database

MIGRATIONS = Path(schema.__file__).resolve().parent / "migrations"


def downgrade(database: Database, revision: str) -> None:
    """What an operator does with ``alembic downgrade``: the schema goes back to ``revision``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_an_empty_database_is_migrated_to_the_head_revision(database_url: str) -> None:
    database = Database.connect(database_url)
    try:
        assert schema.current_revision(database.engine) is None

        schema.upgrade(database.engine)

        assert schema.current_revision(database.engine) == schema.head_revision()
        schema.check_current(database.engine)
    finally:
        database.dispose()


def test_the_migrations_build_exactly_the_tables_the_models_describe(database_url: str) -> None:
    database = Database.connect(database_url)
    try:
        schema.upgrade(database.engine)
        with database.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        database.dispose()

    assert differences == []


def test_a_server_refuses_a_database_without_the_registry_schema(tmp_path: Path, database_url: str) -> None:
    directory = tmp_path / "registry"
    ctx, _admin = init_registry(
        directory, jurisdiction="JP", database_url=f"sqlite:///{tmp_path / 'other.sqlite3'}"
    )
    ctx.db.dispose()

    with pytest.raises(StorageError, match="schema is at nothing"):
        server.open_context(directory, database_url=database_url)


def test_a_server_refuses_an_older_schema_until_it_is_migrated(tmp_path: Path, database_url: str) -> None:
    directory = tmp_path / "registry"
    ctx, _admin = init_registry(directory, jurisdiction="JP", database_url=database_url)
    downgrade(ctx.db, "base")
    ctx.db.dispose()

    with pytest.raises(StorageError, match="run: clearance registry migrate"):
        server.open_context(directory)

    before, after = migrate(directory)

    assert (before, after) == (None, schema.head_revision())
    reopened = server.open_context(directory)
    running = server.start(reopened, "127.0.0.1:0", insecure=True, freshness_check=3600)
    running.stop(grace=0.5)
