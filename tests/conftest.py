"""Shared pytest configuration.

CI sets ``CLEARANCE_REQUIRE_ALL_TESTS=1``: then a skipped test fails the run,
so a missing database or tool cannot pass silently.

The database under test: SQLite by default (a fresh file per test), or the
PostgreSQL named by ``--database-url`` / ``CLEARANCE_TEST_DATABASE_URL``,
where each test gets a schema of its own (dropped afterwards), so tests can
run in parallel against one database::

    pytest                                   # everything, on SQLite
    pytest -m database --database-url postgresql://postgres@127.0.0.1:5432/test

Tests that use the database carry the ``database`` marker; the
:func:`database_url` fixture refuses to serve one that does not, so the
PostgreSQL run cannot leave a database test out.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import psycopg

DATABASE_URL_ENV = "CLEARANCE_TEST_DATABASE_URL"

pytest_plugins = [
    "tests.softhsm_fixtures",  # softhsm, token: a real SoftHSM2 token per test
    "tests.openid4vc_worlds",  # issuer, verifier: OpenID4VCI / OpenID4VP endpoints over HTTPS
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-url",
        default=os.environ.get(DATABASE_URL_ENV) or None,
        help=f"PostgreSQL URL for tests marked 'database' (default: ${DATABASE_URL_ENV}, else SQLite)",
    )


def pytest_configure(config: pytest.Config) -> None:
    url = config.getoption("--database-url")
    if url and not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise pytest.UsageError(
            f"--database-url must be a postgresql:// URL (SQLite is the default), not {url!r}"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CLEARANCE_REQUIRE_ALL_TESTS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        if reporter:
            reporter.write_line(
                f"CLEARANCE_REQUIRE_ALL_TESTS=1 and {skipped} test(s) skipped: failing the run",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


class PostgresSchemas:
    """Creates and drops one schema per test in the PostgreSQL database under test."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        # libpq speaks plain postgresql://; SQLAlchemy's driver suffix is ours to add back.
        self._base = parsed.set(drivername="postgresql")
        self._conninfo = self._base.render_as_string(hide_password=False)
        self.problem: str | None = None
        where = self._base.render_as_string(hide_password=True)
        try:
            import psycopg
        except ImportError:
            self.problem = (
                f"PostgreSQL was requested ({where}) but psycopg is not installed: pip install -e '.[test]'"
            )
            return
        try:
            self._connect().close()
        except psycopg.Error as exc:
            self.problem = (
                f"PostgreSQL was requested (--database-url / ${DATABASE_URL_ENV}) "
                f"but cannot be reached at {where}: {exc}"
            )

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)

    def create(self) -> tuple[str, str]:
        """A new empty schema: (its name, a URL whose connections use only it)."""
        if self.problem is not None:
            pytest.fail(self.problem, pytrace=False)
        name = f"t_{secrets.token_hex(8)}"
        with self._connect() as connection:
            connection.execute(f'CREATE SCHEMA "{name}"')
        url = self._base.update_query_dict({"options": f"-csearch_path={name}"})
        return name, url.render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        with self._connect() as connection:
            connection.execute("SET lock_timeout = '60s'")
            connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def postgres_schemas(request: pytest.FixtureRequest) -> PostgresSchemas | None:
    url = request.config.getoption("--database-url")
    return PostgresSchemas(url) if url else None


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_schemas: PostgresSchemas | None
) -> Iterator[str]:
    """The URL of a fresh, empty database for this test: a SQLite file, or a PostgreSQL schema."""
    if request.node.get_closest_marker("database") is None:
        pytest.fail(
            f"{request.node.nodeid} uses the database but is not marked @pytest.mark.database, "
            "so the PostgreSQL run (-m database) would leave it out",
            pytrace=False,
        )
    if postgres_schemas is None:
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    name, url = postgres_schemas.create()
    try:
        yield url
    finally:
        postgres_schemas.drop(name)
