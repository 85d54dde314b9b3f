"""Status lists as the registry stores them: chunked bytes, a sequence, and signed changes.

A list of 10 million entries at 2 bits is 2.5 MB. It is stored in fixed
chunks (:data:`CHUNK_BYTES`), so a status change rewrites one small row, and
every change bumps the list's ``seq`` and stores the signed delta that made
it (:mod:`clearance.statusdelta`), so subscribers receive a few hundred bytes
per revocation. A full Status List Token is built from the chunks when
someone asks for it and the stored one is behind (:func:`full_token`).

Concurrency: changes to a list serialize on its row (``SELECT ... FOR
UPDATE``), so ``seq`` is gap-free and each delta builds on the previous one.
Index allocation is random over the whole list (herd privacy) and relies on
the unique ``(status_list_id, status_index)`` constraint: a collision rolls
the transaction back and the caller retries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearance.errors import StorageError
from clearance.keys import SigningKey
from clearance.statusdelta import sign_status_delta
from clearance.statuslist import StatusList, sign_status_list
from registry.store.db import Database
from registry.store.models import Credential, StatusChange, StatusListChunk, StatusListRow

BITS = 2
CHUNK_BYTES = 64 * 1024
ENTRIES_PER_CHUNK = CHUNK_BYTES * 8 // BITS
MAX_FILL = 0.5
"""A list stops taking new credentials when half full, so every index stays in a large crowd."""

RECOUNT_EVERY = 10_000
"""Issuances after which :class:`OpenListCache` counts again how full its list is."""

RandomIndex = Callable[[int], int]
"""A uniform random integer below its argument: where status indices come from."""


@dataclass(frozen=True)
class Publication:
    list_id: int
    uri: str
    seq: int
    token: str


def create_list(session: Session, *, uri: str, size: int, now: int) -> StatusListRow:
    """A new, all-valid list of ``size`` entries (rounded up to whole chunks)."""
    chunks = -(-size // ENTRIES_PER_CHUNK)
    row = StatusListRow(
        uri=uri, bits=BITS, size=chunks * ENTRIES_PER_CHUNK, seq=0, allocated=0, full_seq=-1, published_at=now
    )
    session.add(row)
    session.flush()
    for number in range(chunks):
        session.add(StatusListChunk(list_id=row.id, chunk_no=number, data=bytes(CHUNK_BYTES)))
    session.flush()
    return row


def lists(session: Session) -> list[StatusListRow]:
    return list(session.execute(select(StatusListRow).order_by(StatusListRow.id)).scalars().all())


def open_list(session: Session, uri_for: Callable[[int], str], size: int, now: int) -> StatusListRow:
    """The list new credentials go to: the newest, unless it is too full."""
    newest = session.execute(
        select(StatusListRow).order_by(StatusListRow.id.desc()).limit(1)
    ).scalar_one_or_none()
    if newest is not None and newest.allocated < newest.size * MAX_FILL:
        return newest
    number = 1 if newest is None else newest.id + 1
    return create_list(session, uri=uri_for(number), size=size, now=now)


def refresh_fill(session: Session, row: StatusListRow) -> None:
    """Recount how many indices of ``row`` are taken (done now and then, not per issuance)."""
    row.allocated = session.execute(
        select(func.count()).select_from(Credential).where(Credential.status_list_id == row.id)
    ).scalar_one()


@dataclass(frozen=True)
class OpenStatusList:
    """The list new credentials go to: its row, its URI and how many indices it has."""

    id: int
    uri: str
    size: int


class OpenListCache:
    """Which list new credentials go to, remembered by a process and recounted now and then.

    Looking it up on every issuance would read and lock the list's row on the
    hottest path; instead the list is chosen once, and chosen again after
    :data:`RECOUNT_EVERY` issuances (it may have filled up, with other
    replicas issuing too). An index is taken only when its credential is
    inserted, so a list chosen a little late costs nothing but crowding.
    """

    def __init__(self, db: Database, uri_for: Callable[[int], str], size: int) -> None:
        self._db = db
        self._uri_for = uri_for
        self._size = size
        self._lock = threading.Lock()
        self._open: OpenStatusList | None = None
        self._issued_since_count = 0

    def get(self, now: int) -> OpenStatusList:
        """The open list (choosing one may open a transaction: call it outside any).

        Raises:
            StorageError: the database failed.
        """
        with self._lock:
            if self._open is None or self._issued_since_count >= RECOUNT_EVERY:
                with self._db.transaction() as session:
                    row = open_list(session, self._uri_for, self._size, now)
                    refresh_fill(session, row)
                    if row.allocated >= row.size * MAX_FILL:
                        row = open_list(session, self._uri_for, self._size, now)
                    self._open = OpenStatusList(row.id, row.uri, row.size)
                self._issued_since_count = 0
            return self._open

    def count(self, issued: int = 1) -> None:
        """Note ``issued`` more credentials in the open list."""
        with self._lock:
            self._issued_since_count += issued


def _locked(session: Session, list_id: int) -> StatusListRow:
    # populate_existing: if the session read the row before taking the lock, the
    # values another process committed meanwhile must replace what it holds.
    row = session.execute(
        select(StatusListRow)
        .where(StatusListRow.id == list_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise StorageError(f"status list {list_id} does not exist")
    return row


def set_statuses(
    session: Session,
    list_id: int,
    updates: Iterable[tuple[int, int]],
    *,
    key: SigningKey,
    now: int,
    lifetime: int,
) -> Publication:
    """Apply status changes to one list, bump its ``seq`` and store the signed delta.

    An empty ``updates`` publishes a delta with no changes: proof that the list
    is still current (it renews its freshness at the nodes).
    """
    row = _locked(session, list_id)
    changes = sorted(dict(updates).items())
    by_chunk: dict[int, list[tuple[int, int]]] = {}
    for index, status in changes:
        if not 0 <= index < row.size or not 0 <= status < (1 << row.bits):
            raise StorageError(f"status change ({index}, {status}) does not fit list {row.uri}")
        by_chunk.setdefault(index // ENTRIES_PER_CHUNK, []).append((index % ENTRIES_PER_CHUNK, status))
    for chunk_no, entries in by_chunk.items():
        chunk = session.execute(
            select(StatusListChunk).where(
                StatusListChunk.list_id == list_id, StatusListChunk.chunk_no == chunk_no
            )
        ).scalar_one()
        part = StatusList(row.bits, ENTRIES_PER_CHUNK, bytearray(chunk.data))
        for offset, status in entries:
            part.set(offset, status)
        chunk.data = part.to_bytes()
    token = sign_status_delta(
        key, uri=row.uri, issued_at=now, expires_at=now + lifetime, base_seq=row.seq, updates=changes
    )
    row.seq += 1
    row.published_at = now
    session.add(StatusChange(list_id=row.id, seq=row.seq, token=token, issued_at=now))
    session.flush()
    return Publication(row.id, row.uri, row.seq, token)


def read_list(session: Session, row: StatusListRow) -> StatusList:
    data = bytearray()
    for (chunk,) in session.execute(
        select(StatusListChunk.data)
        .where(StatusListChunk.list_id == row.id)
        .order_by(StatusListChunk.chunk_no)
    ):
        data += chunk
    return StatusList(row.bits, row.size, data)


def full_token(
    session: Session, list_id: int, *, key: SigningKey, now: int, lifetime: int, ttl: int
) -> Publication:
    """The current full Status List Token of a list, rebuilt only if changes came since the stored one."""
    row = session.get(StatusListRow, list_id)
    if row is None:
        raise StorageError(f"status list {list_id} does not exist")
    if row.full_token is not None and row.full_seq == row.seq:
        return Publication(row.id, row.uri, row.seq, row.full_token)
    row = _locked(session, list_id)
    token = sign_status_list(
        read_list(session, row),
        key,
        uri=row.uri,
        issued_at=now,
        ttl=ttl,
        expires_at=now + lifetime,
        seq=row.seq,
        level=6,
    )
    row.full_token, row.full_seq = token, row.seq
    session.flush()
    return Publication(row.id, row.uri, row.seq, token)


def changes_since(session: Session, list_id: int, seq: int, limit: int = 1000) -> list[StatusChange]:
    return list(
        session.execute(
            select(StatusChange)
            .where(StatusChange.list_id == list_id, StatusChange.seq > seq)
            .order_by(StatusChange.seq)
            .limit(limit)
        )
        .scalars()
        .all()
    )
