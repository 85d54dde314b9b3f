"""Status indices: drawn at random over the whole open list, and only where no credential holds one.

Random indices give herd privacy (a list reveals nothing about who was
cleared when). An index is finally taken by inserting its credential: the
unique ``(status_list_id, status_index)`` constraint refuses a second one, and
the writer that lost runs again (:func:`registry.store.db.retry_conflicts`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.store.models import Credential
from registry.store.statuslists import OpenStatusList, RandomIndex

_CHUNK = 5000
"""Indices asked about in one query."""


def taken_indices(session: Session, list_id: int, indices: Sequence[int]) -> set[int]:
    """Which of ``indices`` a credential of list ``list_id`` already holds."""
    taken: set[int] = set()
    for start in range(0, len(indices), _CHUNK):
        taken |= {
            i
            for (i,) in session.execute(
                select(Credential.status_index).where(
                    Credential.status_list_id == list_id,
                    Credential.status_index.in_(list(indices[start : start + _CHUNK])),
                )
            )
        }
    return taken


def free_indices(
    session: Session,
    open_list: OpenStatusList,
    count: int,
    random_index: RandomIndex,
    *,
    avoid: Collection[int] = (),
) -> list[int]:
    """``count`` distinct random indices of the list that no credential holds (nor in ``avoid``)."""
    chosen: set[int] = set()
    while len(chosen) < count:
        wanted = (count - len(chosen)) * 2
        candidates = {random_index(open_list.size) for _ in range(wanted)} - chosen - set(avoid)
        taken = taken_indices(session, open_list.id, list(candidates))
        chosen |= set(list(candidates - taken)[: count - len(chosen)])
    return list(chosen)
