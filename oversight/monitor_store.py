"""The oversight monitor's own store: what it learned from the registry's audit chain, and its alerts.

One SQLite file in the monitor's directory, never the registry's database:
the monitor keeps there

* the audit head it last verified (sequence and hash), which the chain must
  still contain at the next run;
* what it replayed from the chain: each organization's facility clearances
  (the level in force at each sequence), each credential's issuance event,
  and each assessment's decision as the chain last showed it;
* its alerts, one per (kind, what it concerns), kept until someone reads them;
* the monthly reports it has checked.

A run's replay and its new head are written in one transaction
(:meth:`MonitorStore.advance`), so a crash never leaves a head that the
replay has not caught up with. Nothing here is personal data: ids, levels,
staff ids, sequence numbers and hashes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clearance.auditchain import GENESIS
from clearance.errors import StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS facilities (
    organization_id TEXT NOT NULL, seq INTEGER NOT NULL, level TEXT,
    PRIMARY KEY (organization_id, seq)
) STRICT;
CREATE TABLE IF NOT EXISTS issuances (
    credential_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, actor TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS decisions (
    assessment_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, decision TEXT NOT NULL,
    in_effect INTEGER NOT NULL, decided_by TEXT NOT NULL, approved_by TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, concerns TEXT NOT NULL, detail TEXT NOT NULL,
    log_index INTEGER, raised_at INTEGER NOT NULL, UNIQUE (kind, concerns)
) STRICT;
CREATE TABLE IF NOT EXISTS reports (
    month TEXT PRIMARY KEY, through INTEGER NOT NULL, head TEXT NOT NULL,
    checked_at INTEGER NOT NULL, matched INTEGER NOT NULL
) STRICT;
"""


@dataclass(frozen=True)
class AuditHead:
    """The last audit event the monitor verified: its sequence number and hash (0 and GENESIS at first)."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Decision:
    """An assessment's decision as the audit chain last showed it."""

    seq: int
    decision: str
    in_effect: bool
    decided_by: str
    approved_by: str


@dataclass(frozen=True)
class Issuance:
    """The audit event that issued a credential."""

    seq: int
    actor: str


@dataclass(frozen=True)
class StoredAlert:
    id: int
    kind: str
    concerns: str
    detail: str
    log_index: int | None
    raised_at: int


@dataclass
class Replay:
    """What one run learned from the chain, written with its new head."""

    facilities: list[tuple[str, int, str | None]] = field(default_factory=list)
    issuances: list[tuple[str, int, str]] = field(default_factory=list)
    decisions: dict[str, Decision | None] = field(default_factory=dict)
    """By assessment; None: the decision was set aside (the row goes)."""


class MonitorStore:
    """The SQLite file of one monitor. Each call opens its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
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
        except sqlite3.Error as exc:
            raise StorageError(f"monitor store {self.path}: {exc}") from exc
        finally:
            db.close()

    # -- settings ------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    # -- the chain and its replay --------------------------------------------------------

    def head(self) -> AuditHead:
        seq, digest = self.get_meta("audit_seq"), self.get_meta("audit_hash")
        return AuditHead(int(seq), digest or GENESIS) if seq is not None else AuditHead(0, GENESIS)

    def advance(self, head: AuditHead, replay: Replay) -> None:
        """Record what a run replayed and the head it verified, in one transaction."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO facilities VALUES (?, ?, ?)", replay.facilities)
            db.executemany("INSERT OR IGNORE INTO issuances VALUES (?, ?, ?)", replay.issuances)
            for assessment_id, decision in replay.decisions.items():
                db.execute("DELETE FROM decisions WHERE assessment_id = ?", (assessment_id,))
                if decision is not None:
                    db.execute(
                        "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            assessment_id,
                            decision.seq,
                            decision.decision,
                            int(decision.in_effect),
                            decision.decided_by,
                            decision.approved_by,
                        ),
                    )
            for key, value in (("audit_seq", str(head.seq)), ("audit_hash", head.hash)):
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                    (key, value, value),
                )
            db.execute("COMMIT")

    def facility_at(self, organization_id: str, seq: int) -> str | None:
        """The facility level the organization held just before event ``seq`` (None: none in force)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT level FROM facilities WHERE organization_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
                (organization_id, seq),
            ).fetchone()
        return row[0] if row else None

    def issuance(self, credential_id: str) -> Issuance | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT seq, actor FROM issuances WHERE credential_id = ?", (credential_id,)
            ).fetchone()
        return Issuance(*row) if row else None

    def decision(self, assessment_id: str) -> Decision | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT seq, decision, in_effect, decided_by, approved_by FROM decisions WHERE assessment_id = ?",
                (assessment_id,),
            ).fetchone()
        return Decision(row[0], row[1], bool(row[2]), row[3], row[4]) if row else None

    # -- alerts and reports ----------------------------------------------------------------

    def raise_alerts(self, alerts: Sequence[tuple[str, str, str, int | None]], now: int) -> int:
        """Store ``(kind, concerns, detail, log_index)`` alerts not stored before; how many were new."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO alerts (kind, concerns, detail, log_index, raised_at) VALUES (?, ?, ?, ?, ?)",
                [(*alert, now) for alert in alerts],
            )
            added = db.total_changes - before
            db.execute("COMMIT")
        return added

    def alerts(self) -> list[StoredAlert]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, kind, concerns, detail, log_index, raised_at FROM alerts ORDER BY id"
            ).fetchall()
        return [StoredAlert(*row) for row in rows]

    def record_report(self, month: str, through: int, head: str, *, matched: bool, now: int) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO reports VALUES (?, ?, ?, ?, ?)",
                (month, through, head, now, int(matched)),
            )
