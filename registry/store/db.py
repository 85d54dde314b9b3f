"""Database access: one engine per process, sessions through one context manager.

SQLite (the embedded default) gets WAL, foreign keys and a busy timeout;
those settings are applied only to SQLite. PostgreSQL is used through
psycopg 3 (``postgresql+psycopg://``; plain ``postgresql://`` URLs are
rewritten to it). Every SQLAlchemy error is mapped to
:class:`~clearance.errors.StorageError` at this boundary, and a transaction
that fails in the middle is rolled back whole. A write that collided with a
concurrent one (a unique key taken first, a deadlock or serialization failure,
SQLite's busy lock) is a :class:`~clearance.errors.WriteConflictError`: callers
that may simply run again use :func:`retry_conflicts`, and nobody above this
module looks at SQLAlchemy's exceptions.

Publication listeners (:meth:`Database.on_publication`) are told once after
each committed transaction that wrote published material
(:data:`~registry.store.models.PUBLISHED_ROWS`): nobody announces a change by
hand, and a transaction that rolled back announces nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from clearance.errors import ClearanceError, InvalidArgumentError, StorageError, WriteConflictError
from registry.store.models import PUBLISHED_ROWS

log = logging.getLogger("clearance.registry.db")

T = TypeVar("T")

_WROTE_PUBLISHED = "clearance.wrote_published"
"""Set in a session's ``info`` when a flush of it wrote a published row."""

RETRIES = 5
"""How many times in all :func:`retry_conflicts` runs an operation that keeps conflicting."""


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
        event.listen(self._sessions, "after_flush", _note_published)
        self._publication_listeners: list[Callable[[], None]] = []

    def on_publication(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every committed transaction that wrote published material.

        It runs in the committing thread, after the commit: it must be quick
        (wake someone up), and what it raises is logged, never turned into a
        failure of a transaction that has already committed.
        """
        self._publication_listeners.append(listener)

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
        write lock, so they run beside a writer. Once a transaction that wrote
        published material has committed, the publication listeners are told.

        Raises:
            WriteConflictError: the write lost to a concurrent one; nothing was written.
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
        except SQLAlchemyError as exc:
            raise storage_error(exc) from exc
        finally:
            session.close()
        if session.info.get(_WROTE_PUBLISHED):
            self._announce_publication()

    def _announce_publication(self) -> None:
        for listener in list(self._publication_listeners):
            try:
                listener()
            except Exception:  # the transaction has committed: a listener cannot undo it
                log.exception("a publication listener failed")

    @contextlib.contextmanager
    def connection(self, *, readonly: bool = False) -> Iterator[Connection]:
        """A Core connection in one transaction, for hot paths that need no ORM (nor publish anything).

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
        except SQLAlchemyError as exc:
            raise storage_error(exc) from exc

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


_CONFLICT_SQLSTATES = frozenset({"23505", "40001", "40P01"})
"""PostgreSQL's unique violation, serialization failure and deadlock."""
_SQLITE_CONFLICTS = frozenset({5, 6})
"""SQLITE_BUSY and SQLITE_LOCKED (primary codes: extended codes carry them in the low byte)."""
_SQLITE_UNIQUE = frozenset({1555, 2067})
"""SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE."""


def _note_published(session: Session, _flush_context: Any) -> None:
    # After a flush, new/dirty/deleted still show what the flush wrote.
    if not session.info.get(_WROTE_PUBLISHED) and any(
        isinstance(row, PUBLISHED_ROWS)
        for row in itertools.chain(session.new, session.dirty, session.deleted)
    ):
        session.info[_WROTE_PUBLISHED] = True


def storage_error(exc: SQLAlchemyError) -> StorageError:
    """The error of our tree for a failure of the database (the one place that reads the driver's codes)."""
    if _is_conflict(exc):
        return WriteConflictError(f"conflicting write (retry): {_short(exc)}")
    if isinstance(exc, OperationalError):
        return StorageError(f"database unavailable or busy: {_short(exc)}")
    return StorageError(f"database error: {_short(exc)}")


def _is_conflict(exc: SQLAlchemyError) -> bool:
    """Did this write lose to a concurrent one (so that running it again may succeed)?"""
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    if getattr(original, "sqlstate", None) in _CONFLICT_SQLSTATES:
        return True
    code = getattr(original, "sqlite_errorcode", None)
    return isinstance(code, int) and (code in _SQLITE_UNIQUE or (code & 0xFF) in _SQLITE_CONFLICTS)


def retry_conflicts(operation: Callable[[], T], *, attempts: int = RETRIES) -> T:
    """Run ``operation``, and again each time it fails with a write conflict, ``attempts`` times in all.

    ``operation`` must be a whole transaction (a conflict rolled it back) that
    reads again what it depends on, such as a free status index.

    Raises:
        WriteConflictError: the last attempt conflicted too.
    """
    for _ in range(attempts - 1):
        try:
            return operation()
        except WriteConflictError:
            continue
    return operation()


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__
