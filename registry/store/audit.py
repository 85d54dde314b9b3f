"""The append-only, hash-chained audit log.

Every state change appends one event **in the same transaction** as the
change: if the change rolls back, so does its event, and vice versa. Each
event's hash covers its content and the previous event's hash::

    hash_n = SHA-256(canonical JSON of {seq, at, actor, action, object_type,
                     object_id, details, prev_hash = hash_(n-1)})

so editing, deleting or reordering any event breaks the chain at that point
(:func:`verify_chain`; the hash itself is :func:`clearance.auditchain.event_hash`,
which the oversight monitor recomputes). Appends serialize on the single ``audit_head`` row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock does the same),
which keeps the chain linear across several registry processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from clearance.auditchain import GENESIS as GENESIS
from clearance.auditchain import event_hash as event_hash
from clearance.encoding import canonical_json
from clearance.errors import StorageError
from registry.store.models import AuditEvent, AuditHead

# Built once: every audited transaction runs them.
_LOCK_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
_INSERT_EVENTS = insert(cast(Table, AuditEvent.__table__))
_MOVE_HEAD = (
    update(cast(Table, AuditHead.__table__))
    .where(AuditHead.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def ensure_head(session: Session) -> None:
    """Create the chain's head row if the log is new."""
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, hash=GENESIS))
        session.flush()


@dataclass(frozen=True)
class Entry:
    """One event to append: who did what to which object, when, and details (never personal data)."""

    at: int
    actor: str
    action: str
    object_type: str
    object_id: str
    details: Mapping[str, Any] | None = None


def append(
    session: Session,
    *,
    at: int,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Append one event to the chain inside the caller's transaction; returns its ``seq``.

    Call it last in a transaction: the head row stays locked until commit.

    Raises:
        StorageError: the log has no head (the database was never migrated).
    """
    return append_many(session, [Entry(at, actor, action, object_type, object_id, details)])


def append_many(session: Session, entries: Sequence[Entry]) -> int:
    """Append several events, in order, under one lock of the head; returns the last ``seq``.

    Raises:
        StorageError: the log has no head (the database was never migrated).
    """
    session.flush()  # the change being audited goes first, then the lock is taken
    connection = session.connection()
    head = connection.execute(_LOCK_HEAD).one_or_none()
    if head is None:
        raise StorageError("audit log is not initialized; run: clearance registry migrate")
    seq, previous = int(head.seq), str(head.hash)
    rows = []
    for entry in entries:
        seq += 1
        detail_text = canonical_json(dict(entry.details or {})).decode()
        digest = event_hash(
            seq=seq,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            details=detail_text,
            prev_hash=previous,
        )
        rows.append(
            {
                "seq": seq,
                "at": entry.at,
                "actor": entry.actor,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": entry.object_id,
                "details": detail_text,
                "prev_hash": previous,
                "hash": digest,
            }
        )
        previous = digest
    connection.execute(_INSERT_EVENTS, rows)
    connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": previous})
    return seq


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    events_checked: int
    broken_at: int
    problem: str
    head_hash: str


def verify_chain(session: Session, *, batch: int = 5000) -> ChainReport:
    """Walk the whole log and report the first event that does not chain.

    Detects an edited event (its hash no longer matches its content), a
    deleted one (a gap in ``seq`` or a ``prev_hash`` that points elsewhere), a
    reordered one, and a head that does not match the last event.
    """
    previous_hash, expected_seq, checked = GENESIS, 1, 0
    for event in _events(session, batch):
        if event.seq != expected_seq:
            return ChainReport(
                False, checked, expected_seq, f"event {expected_seq} is missing", previous_hash
            )
        if event.prev_hash != previous_hash:
            return ChainReport(False, checked, event.seq, "does not follow the previous event", previous_hash)
        recomputed = event_hash(
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            details=event.details,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            return ChainReport(
                False, checked, event.seq, "content does not match its hash (edited)", previous_hash
            )
        previous_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head = session.get(AuditHead, 1)
    if head is None or head.seq != checked or head.hash != previous_hash:
        return ChainReport(
            False, checked, checked + 1, "the last events were removed (head does not match)", previous_hash
        )
    return ChainReport(True, checked, 0, "", previous_hash)


def _events(session: Session, batch: int) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = (
            session.execute(
                select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def details_of(event: AuditEvent) -> dict[str, Any]:
    value = json.loads(event.details)
    return value if isinstance(value, dict) else {}
