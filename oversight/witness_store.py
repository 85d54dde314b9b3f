"""The witness's durable state: one SQLite row per log, updated only by compare-and-swap.

Each row holds the log's origin, its verifier key, and the latest checkpoint
the witness cosigned (size, root hash, the note). A cosignature is handed out
only after the row has been updated and the transaction committed
(``synchronous=FULL`` in WAL mode), so a crash never loses a cosigned
checkpoint. The update names the size and root it expects to replace: if
another request got there first, nothing is written and the caller refuses,
so two concurrent requests can never roll a log back. A refused request
writes nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clearance.errors import ConflictError, NotFoundError, StorageError
from clearance.transparency.merkle import EMPTY_ROOT

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    verifier_key TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
    root_hash BLOB NOT NULL,
    checkpoint BLOB,
    updated_at INTEGER
) STRICT;
"""


@dataclass(frozen=True)
class LogState:
    """What the witness knows of one log."""

    origin: str
    verifier_key: str
    size: int
    root_hash: bytes
    checkpoint: bytes | None
    updated_at: int | None


class WitnessStore:
    """The SQLite file of one witness. Each call opens its own connection (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # Writers in this process queue here instead of in SQLite's sleeping busy handler.
        self._write_lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StorageError(f"witness store {self.path}: {exc}") from exc
        finally:
            db.close()

    def add_log(self, origin: str, verifier_key: str) -> LogState:
        """Start witnessing ``origin``, whose checkpoints ``verifier_key`` signs (from size 0).

        Raises:
            ConflictError: the log is already configured.
        """
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO logs (origin, verifier_key, size, root_hash) VALUES (?, ?, 0, ?)",
                    (origin, verifier_key, EMPTY_ROOT),
                )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"log {origin!r} is already configured") from exc
        return self.get(origin)

    def find(self, origin: str) -> LogState | None:
        """The state of ``origin``, or None if the witness does not know it."""
        with self._connect() as db:
            row = db.execute(
                "SELECT origin, verifier_key, size, root_hash, checkpoint, updated_at FROM logs WHERE origin = ?",
                (origin,),
            ).fetchone()
        return LogState(*row) if row else None

    def get(self, origin: str) -> LogState:
        """The state of ``origin``.

        Raises:
            NotFoundError: the witness does not know the log.
        """
        state = self.find(origin)
        if state is None:
            raise NotFoundError(f"unknown log {origin!r}")
        return state

    def logs(self) -> list[LogState]:
        """Every configured log, by origin."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT origin, verifier_key, size, root_hash, checkpoint, updated_at FROM logs ORDER BY origin"
            ).fetchall()
        return [LogState(*row) for row in rows]

    def advance(
        self,
        origin: str,
        *,
        expected_size: int,
        expected_root: bytes,
        size: int,
        root_hash: bytes,
        checkpoint: bytes,
        now: int,
    ) -> bool:
        """Record a newly cosigned checkpoint if the log is still at ``expected_size``/``expected_root``.

        Returns:
            Whether the row was updated (False: another request advanced it first).
        """
        with self._write_lock, self._connect() as db:
            cursor = db.execute(
                "UPDATE logs SET size = ?, root_hash = ?, checkpoint = ?, updated_at = ? "
                "WHERE origin = ? AND size = ? AND root_hash = ?",
                (size, root_hash, checkpoint, now, origin, expected_size, expected_root),
            )
            return cursor.rowcount == 1
