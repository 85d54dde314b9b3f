"""How replicas tell each other that publications changed.

On PostgreSQL, :class:`PostgresChangeFeed`: after a local commit, a replica
sends ``NOTIFY`` on a channel named after the database schema, and every
replica (itself included) ``LISTEN``\\ s on it with a connection of its own,
so a change reaches the streams of all of them at once, without polling.
On SQLite (one machine, usually one process) :class:`PollingChangeFeed`
announces nothing: the hub compares versions at its poll interval.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, Protocol

from sqlalchemy import func, select, text

from clearance.errors import ClearanceError
from registry.store.db import Database

log = logging.getLogger("clearance.registry.changes")

CHANNEL_PREFIX = "clearance_publications_"
RECONNECT_SECONDS = 1.0


class ChangeFeed(Protocol):
    """Tells this replica of other replicas' commits, and them of ours."""

    @property
    def notifies(self) -> bool:
        """Whether other replicas' commits are announced (else the hub must poll)."""
        ...

    def start(self, wake: threading.Event) -> None:
        """Set ``wake`` whenever some replica announces a change."""
        ...

    def announce(self) -> None:
        """Tell every replica that this one committed a change (best effort)."""
        ...

    def close(self) -> None: ...


class PollingChangeFeed:
    """No announcements: the hub polls (SQLite)."""

    notifies = False

    def start(self, wake: threading.Event) -> None:
        del wake

    def announce(self) -> None:
        pass

    def close(self) -> None:
        pass


class PostgresChangeFeed:
    """``LISTEN/NOTIFY`` on a channel of this schema, with a connection of its own."""

    notifies = True

    def __init__(self, db: Database) -> None:
        self._db = db
        with db.connection(readonly=True) as connection:
            schema = connection.execute(select(func.current_schema())).scalar() or "public"
        self.channel = CHANNEL_PREFIX + hashlib.sha256(schema.encode()).hexdigest()[:16]
        self._conninfo = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: Any = None
        self.received = 0

    def start(self, wake: threading.Event) -> None:
        self._thread = threading.Thread(target=self._listen, args=(wake,), name="change-feed", daemon=True)
        self._thread.start()

    def announce(self) -> None:
        try:
            with self._db.connection() as connection:
                connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": self.channel})
        except ClearanceError as exc:  # the other replicas' backstop poll will see it
            log.warning("could not announce a change: %s", exc)

    def _listen(self, wake: threading.Event) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    self._connection = connection
                    connection.execute(f'LISTEN "{self.channel}"')
                    wake.set()  # anything committed while we were not listening is read now
                    while not self._stop.is_set():
                        for _notice in connection.notifies(timeout=1.0):
                            self.received += 1
                            wake.set()
                            if self._stop.is_set():
                                break
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                log.warning("change feed lost its connection (%s); reconnecting", exc)
                self._stop.wait(RECONNECT_SECONDS)
            finally:
                self._connection = None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def open_change_feed(db: Database) -> ChangeFeed:
    """LISTEN/NOTIFY on PostgreSQL; polling elsewhere."""
    if db.dialect == "postgresql":
        return PostgresChangeFeed(db)
    return PollingChangeFeed()
