"""The node's decision log: append-only, hash-chained, in its own SQLite file.

Every sharing decision, allowed or denied, is appended with its reasons
before the answer leaves the node; if the append fails, the caller gets an
error, never an unlogged "allow". Each entry's hash covers its content and
the previous entry's hash, as the registry's audit log does::

    hash_n = SHA-256(canonical JSON of {seq, at, allowed, code, record, prev_hash = hash_(n-1)})

and a one-row ``head`` table holds the last ``seq`` and hash, updated in the
same transaction. :meth:`DecisionLog.verify` walks the chain and reports the
first entry that was edited (its hash no longer matches), deleted (a gap, or
a ``prev_hash`` pointing elsewhere), reordered, or cut from the end (the head
no longer matches). Someone who can rewrite the whole file, head included,
can forge a consistent chain: publish the head hash somewhere the node's
operators cannot write (``clearance node log verify`` prints it) to detect
that too.

The log is its own file with ``synchronous=FULL``: a decision reported to a
caller survives a power loss. It holds no personal data beyond the
presenter's pseudonymous subject.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.encoding import canonical_json
from clearance.errors import StorageError
from node.config import create_private_file

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    code TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT OR IGNORE INTO head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
"""


def entry_hash(*, seq: int, at: int, allowed: bool, code: str, record: str, prev_hash: str) -> str:
    body = {"seq": seq, "at": at, "allowed": allowed, "code": code, "record": record, "prev_hash": prev_hash}
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class LogEntry:
    seq: int
    at: int
    allowed: bool
    code: str
    record: str
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        try:
            record = json.loads(self.record)
        except ValueError:
            record = self.record
        return {
            "seq": self.seq,
            "at": self.at,
            "allowed": self.allowed,
            "code": self.code,
            "record": record,
            "hash": self.hash,
            "prev_hash": self.prev_hash,
        }


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain: intact, or the first place it breaks."""

    intact: bool
    entries_checked: int
    broken_at: int
    problem: str
    head_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "entries_checked": self.entries_checked,
            "broken_at": self.broken_at,
            "problem": self.problem,
            "head_hash": self.head_hash,
        }


class DecisionLog:
    """Appends decisions and checks the chain. Thread-safe."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the log at ``path``.

        Raises:
            StorageError: it cannot be opened or is not a decision log.
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        create_private_file(self.path)
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=30, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the decision log {self.path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"cannot open the decision log {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StorageError(f"decision log {self.path}: {exc}") from exc

    def append(self, *, at: int, allowed: bool, code: str, record: Mapping[str, Any]) -> int:
        """Append one decision; return its sequence number.

        Raises:
            StorageError: it could not be written (the decision must not be acted on).
        """
        text = canonical_json(dict(record)).decode()
        with self._locked() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = db.execute("SELECT seq, hash FROM head WHERE id = 1").fetchone()
                seq += 1
                digest = entry_hash(seq=seq, at=at, allowed=allowed, code=code, record=text, prev_hash=prev)
                db.execute(
                    "INSERT INTO decisions (seq, at, allowed, code, record, prev_hash, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, at, int(allowed), code, text, prev, digest),
                )
                db.execute("UPDATE head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return int(seq)

    def entries(self, *, after: int = 0, limit: int = 100) -> list[LogEntry]:
        """Entries with ``seq > after``, oldest first, at most ``limit``."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT seq, at, allowed, code, record, prev_hash, hash FROM decisions "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [LogEntry(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    def verify(self) -> ChainReport:
        """Walk the whole chain; report the first entry that does not chain.

        Raises:
            StorageError: the file cannot be read.
        """
        previous, expected, checked = GENESIS, 1, 0
        after = 0
        while True:
            batch = self._rows_after(after)
            if not batch:
                break
            for seq, at, allowed, code, record, prev_hash, digest in batch:
                if seq != expected:
                    return ChainReport(False, checked, expected, f"entry {expected} is missing", previous)
                if prev_hash != previous:
                    return ChainReport(
                        False,
                        checked,
                        seq,
                        "does not follow the previous entry (deleted or reordered)",
                        previous,
                    )
                recomputed = entry_hash(
                    seq=seq, at=at, allowed=bool(allowed), code=code, record=record, prev_hash=prev_hash
                )
                if recomputed != digest:
                    return ChainReport(
                        False, checked, seq, "content does not match its hash (edited)", previous
                    )
                previous, expected, checked = digest, expected + 1, checked + 1
            after = batch[-1][0]
        with self._locked() as db:
            head = db.execute("SELECT seq, hash FROM head WHERE id = 1").fetchone()
        if head is None or head[0] != checked or head[1] != previous:
            return ChainReport(
                False, checked, checked + 1, "the last entries were removed (head does not match)", previous
            )
        return ChainReport(True, checked, 0, "", previous)

    def _rows_after(self, after: int, batch: int = 5000) -> list[tuple[Any, ...]]:
        with self._locked() as db:
            return list(
                db.execute(
                    "SELECT seq, at, allowed, code, record, prev_hash, hash FROM decisions "
                    "WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after, batch),
                ).fetchall()
            )
