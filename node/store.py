"""The node's local store: the signed documents it has accepted, in SQLite.

The store keeps the **raw signed documents**, never conclusions drawn from
them: root rotations, the home trust bundle, partner bundles, each status
list as its last full Status List Token plus the signed deltas applied on top
of it. At start the node rebuilds its :class:`~clearance.trust.TrustStore` by
replaying them through the trust core (:meth:`NodeStore.rebuild`), so what
the node trusts after a restart passed exactly the checks it passed before.

Each document is replayed at the time it was first accepted: whether it was
acceptable then is what the replay re-checks (signature, chain, order);
whether the result may still be relied on *now* (bundle expiry, list age) is
checked at every decision, as always.

Writes: one transaction per accepted document, which also drops what the new
document supersedes (an older bundle, a list and its deltas replaced by a
full list, anything the trust store let go). A node killed in the middle of
a sync therefore restarts with the state of the last whole update. SQLite in
WAL mode with ``synchronous=NORMAL``: a committed update survives the process
being killed; after a power loss the last updates may be missing, which the
next sync fetches again (the decision log, which must not lose entries, uses
``FULL``; see :mod:`node.decision_log`).

Schema::

    meta(key PRIMARY KEY, value)          pinned root JWK, last sync time
    documents(id, kind, subject, token, accepted_at)
        kind: root_rotation | trust_bundle | foreign_bundle | status_list | status_delta
        subject: jurisdiction (bundles), list URI (lists, deltas), version (rotations)
    problems(id, at, source, reason, detail)   refusals, for `node status`
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.bundle import RootRotation
from clearance.encoding import parse_json
from clearance.errors import ClearanceError, StorageError
from clearance.keys import PublicKey
from clearance.trust import TrustStore
from node.config import create_private_file

KINDS = ("root_rotation", "trust_bundle", "foreign_bundle", "status_list", "status_delta")
MAX_PROBLEMS = 200
"""Refusals kept for ``node status``; older ones are dropped."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('root_rotation', 'trust_bundle', 'foreign_bundle',
                                       'status_list', 'status_delta')),
    subject TEXT NOT NULL,
    token TEXT NOT NULL,
    accepted_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_kind_subject ON documents (kind, subject);
CREATE TABLE IF NOT EXISTS problems (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Problem:
    """A refused document or a failed sync step."""

    at: int
    source: str
    reason: str
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"at": self.at, "source": self.source, "reason": self.reason, "detail": self.detail}

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}: {self.detail}"


@dataclass(frozen=True)
class Document:
    id: int
    kind: str
    subject: str
    token: str
    accepted_at: int


class NodeStore:
    """The node's SQLite store. Thread-safe: one connection behind a lock."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the store at ``path``.

        Raises:
            StorageError: the file cannot be opened or is not a node store.
        """
        self.path = Path(path)
        self._lock = threading.RLock()
        create_private_file(self.path)
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=30, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the node store {self.path}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"cannot open the node store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"node store {self.path}: {exc}") from exc

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, params).fetchall())
            except sqlite3.Error as exc:
                raise StorageError(f"node store {self.path}: {exc}") from exc

    # -- meta ----------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def pinned_root(self) -> PublicKey:
        """The root pinned at enrollment.

        Raises:
            StorageError: none pinned, or not a key.
        """
        text = self.get_meta("root_jwk")
        if text is None:
            raise StorageError(f"{self.path} pins no root; was the node enrolled?")
        try:
            return PublicKey.from_jwk(parse_json(text, what="pinned root"))
        except ClearanceError as exc:
            raise StorageError(f"the pinned root in {self.path} is not a key: {exc}") from exc

    # -- documents -----------------------------------------------------------

    def record(self, kind: str, subject: str, token: str, accepted_at: int, trust: TrustStore) -> None:
        """Store a document the trust store has just accepted, in one transaction.

        ``trust`` is the trust store *after* accepting it: whatever it no longer
        holds (a replaced bundle, a list replaced by a full one, lists or partners
        a new bundle dropped) is deleted in the same transaction.

        Raises:
            StorageError: the write failed; nothing was changed.
        """
        if kind not in KINDS:
            raise StorageError(f"unknown document kind {kind!r}")
        with self._transaction() as db:
            if kind == "trust_bundle":
                db.execute("DELETE FROM documents WHERE kind = 'trust_bundle'")
            elif kind == "foreign_bundle":
                db.execute("DELETE FROM documents WHERE kind = 'foreign_bundle' AND subject = ?", (subject,))
            elif kind == "status_list":
                db.execute(
                    "DELETE FROM documents WHERE kind IN ('status_list', 'status_delta') AND subject = ?",
                    (subject,),
                )
            db.execute(
                "INSERT INTO documents (kind, subject, token, accepted_at) VALUES (?, ?, ?, ?)",
                (kind, subject, token, accepted_at),
            )
            _prune(db, trust)

    def documents(self, kind: str | None = None) -> list[Document]:
        if kind is None:
            rows = self._query("SELECT id, kind, subject, token, accepted_at FROM documents ORDER BY id")
        else:
            rows = self._query(
                "SELECT id, kind, subject, token, accepted_at FROM documents WHERE kind = ? ORDER BY id",
                (kind,),
            )
        return [Document(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

    def rebuild(
        self, root: PublicKey, *, repair: bool = True, on_problem: Callable[[Problem], None] | None = None
    ) -> TrustStore:
        """Replay every stored document through a new :class:`TrustStore` pinned to ``root``.

        A document that no longer replays (the file was damaged, or a write was
        lost) is skipped with everything built on it; with ``repair`` (the
        running node) it is also deleted and reported, and the next sync fetches
        it again. Without ``repair`` (a command reading beside the running node)
        nothing is written.

        Raises:
            StorageError: the store cannot be read.
        """
        trust = TrustStore(root)
        dropped: list[int] = []
        broken_lists: set[str] = set()
        order = {kind: rank for rank, kind in enumerate(KINDS)}
        for doc in sorted(self.documents(), key=lambda d: (order[d.kind], d.id)):
            if doc.kind == "status_delta" and doc.subject in broken_lists:
                dropped.append(doc.id)
                continue
            try:
                _replay(trust, doc)
            except ClearanceError as exc:
                dropped.append(doc.id)
                if doc.kind in ("status_list", "status_delta"):
                    broken_lists.add(doc.subject)
                problem = Problem(doc.accepted_at, f"store {doc.kind}", "replay_failed", str(exc))
                if repair:
                    self.add_problem(problem)
                if on_problem is not None:
                    on_problem(problem)
        if dropped and repair:
            with self._transaction() as db:
                db.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in dropped])
                _prune(db, trust)
        return trust

    # -- problems ------------------------------------------------------------

    def add_problem(self, problem: Problem) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO problems (at, source, reason, detail) VALUES (?, ?, ?, ?)",
                (problem.at, problem.source, problem.reason, problem.detail[:500]),
            )
            db.execute("DELETE FROM problems WHERE id <= (SELECT max(id) FROM problems) - ?", (MAX_PROBLEMS,))

    def problems(self, limit: int = 20) -> list[Problem]:
        rows = self._query(
            "SELECT at, source, reason, detail FROM problems ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [Problem(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def _replay(trust: TrustStore, doc: Document) -> None:
    if doc.kind == "root_rotation":
        trust.update_root(RootRotation.parse(parse_json(doc.token, what="root rotation")))
    elif doc.kind == "trust_bundle":
        trust.update_bundle(doc.token, doc.accepted_at)
    elif doc.kind == "foreign_bundle":
        trust.update_foreign_bundle(doc.token, doc.accepted_at)
    elif doc.kind == "status_list":
        trust.update_status_list(doc.token, doc.accepted_at)
    else:
        trust.apply_status_delta(doc.token, doc.accepted_at)


def _prune(db: sqlite3.Connection, trust: TrustStore) -> None:
    """Delete what ``trust`` no longer holds: partners it dropped, lists no bundle lists."""
    partners = [json.dumps(sorted(trust.foreign))]
    db.execute(
        "DELETE FROM documents WHERE kind = 'foreign_bundle' AND subject NOT IN (SELECT value FROM json_each(?))",
        partners,
    )
    db.execute(
        "DELETE FROM documents WHERE kind IN ('status_list', 'status_delta') "
        "AND subject NOT IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(trust.status_lists))],
    )
