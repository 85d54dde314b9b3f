"""Rows looked up by their primary key, for a request that names them: a missing one is NotFoundError."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from clearance.errors import NotFoundError
from registry.store.models import Base

Row = TypeVar("Row", bound=Base)


def existing(session: Session, model: type[Row], key: str, what: str, *, lock: bool = False) -> Row:
    """The ``model`` row whose primary key is ``key``; ``lock`` reads it ``FOR UPDATE`` (and afresh).

    Raises:
        NotFoundError: no such row (an empty key names none), as "``what`` 'key' not found".
    """
    row = session.get(model, key, with_for_update=True if lock else None) if key else None
    if row is None:
        raise NotFoundError(f"{what} {key!r} not found")
    return row
