"""Database access: one engine per process, sessions through one context manager.

SQLite (the embedded default) gets WAL, foreign keys and a busy timeout;
those settings are applied only to SQLite. PostgreSQL is used through
psycopg 3 (``postgresql+psycopg://``; plain ``postgresql://`` URLs are
rewritten to it). Every SQLAlchemy error is mapped to
:class:`~clearance.errors.StorageError` at this boundary, and a transaction
that fails in the middle is rolled back whole.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from clearance.errors import ClearanceError, InvalidArgumentError, StorageError


def normalize_url(url: str) -> str:
    """Choose our drivers: psycopg 3 for PostgreSQL.

    Raises:
        InvalidArgumentError: not a SQLite or PostgreSQL URL.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("postgresql+psycopg://", "sqlite://", "cockroachdb://")):
        return url
    raise InvalidArgumentError("--database-url", "must be a sqlite:/// or postgresql:// URL")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings its backend needs.

    Raises:
        InvalidArgumentError: an unsupported URL.
        StorageError: the driver is missing.
    """
    url = normalize_url(url)
    options: dict[str, Any] = {"future": True}
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        # Created by us before SQLite does, so private from the start (its -wal and -shm follow its mode).
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if path and not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        options.update(pool_size=32, max_overflow=32)
    else:
        options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
    options.update(kwargs)
    try:
        engine = create_engine(url, **options)
    except ImportError as exc:
        raise StorageError(
            "PostgreSQL support is not installed; run: pip install 'clearance[postgresql]'"
        ) from exc
    if is_sqlite(engine):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level: transactions are begun explicitly below,
    # so SQLAlchemy's BEGIN is the one that counts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # Take the write lock at BEGIN: a read-then-write transaction can then
    # never fail to upgrade its lock halfway (SQLite's "database is locked").
    # Read-only transactions do not need it and run beside writers (WAL).
    if connection.get_execution_options().get("clearance_readonly"):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The registry's database: a session factory with error mapping."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False, autoflush=False)

    @classmethod
    def connect(cls, url: str) -> Database:
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error.

        ``readonly`` transactions must not write; on SQLite they do not take the
        write lock, so they run beside a writer.

        Raises:
            StorageError: the database failed (SQLAlchemy errors are mapped here).
        """
        session = self._sessions()
        try:
            with session.begin():
                if readonly:
                    session.connection(execution_options={"clearance_readonly": True})
                yield session
        except ClearanceError:
            raise
        except OperationalError as exc:
            raise StorageError(f"database unavailable or busy: {_short(exc)}") from exc
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StorageError(f"database error: {_short(exc)}") from exc
        finally:
            session.close()

    @contextlib.contextmanager
    def connection(self, *, readonly: bool = False) -> Iterator[Connection]:
        """A Core connection in one transaction, for hot paths that need no ORM.

        Raises:
            StorageError: the database failed.
        """
        try:
            with self.engine.connect() as connection:
                if readonly:
                    connection = connection.execution_options(clearance_readonly=True)
                with connection.begin():
                    yield connection
        except ClearanceError:
            raise
        except OperationalError as exc:
            raise StorageError(f"database unavailable or busy: {_short(exc)}") from exc
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StorageError(f"database error: {_short(exc)}") from exc

    def dispose(self, *, wait: float = 5.0) -> None:
        """Close every connection, waiting up to ``wait`` seconds for those still in use.

        A connection checked out while the pool is disposed would be left open
        and dropped later, unclosed: the caller stops its threads first, and
        this waits for their last statements to finish.
        """
        deadline = time.monotonic() + wait
        checked_out = getattr(self.engine.pool, "checkedout", None)
        while checked_out is not None and checked_out() > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.engine.dispose()


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__
