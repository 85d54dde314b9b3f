"""Schema management through Alembic: create a new database, or upgrade an old one.

``clearance registry init`` and ``clearance registry migrate`` call
:func:`upgrade`; the server refuses to start on a database whose schema is
not at the head revision (:func:`check_current`).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from clearance.errors import StorageError

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest), in one transaction per step."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def check_current(engine: Engine) -> None:
    """Refuse to serve from a database whose schema is not the one this code expects.

    Raises:
        StorageError: the schema is missing or at another revision.
    """
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise StorageError(
            f"database schema is at {current or 'nothing'}, this version needs {head}; "
            "run: clearance registry migrate --dir DIR"
        )
