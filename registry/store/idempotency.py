"""Idempotency keys: a request sent again returns what the first one produced.

A caller may send a key with a request that creates something. The first
request with the key records ``(caller, key) -> (operation, hash of the
request, id of the result)`` in the transaction that creates the result; a
later request with the same key and the same content gets that result back
instead of a second one, and the same key with other content is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.encoding import canonical_json
from clearance.errors import ConflictError, InvalidArgumentError
from registry.store.models import IdempotencyRecord

MAX_KEY_LENGTH = 128


def request_hash(operation: str, values: Mapping[str, Any]) -> str:
    """A digest of what a request asks for, to tell a repeat from another request under the same key."""
    return hashlib.sha256(canonical_json({"op": operation, **values})).hexdigest()


@dataclass(frozen=True)
class IdempotencyKey:
    """One caller's key for one request; an empty ``key`` makes every request new.

    Raises:
        InvalidArgumentError: the key is longer than :data:`MAX_KEY_LENGTH`.
    """

    actor: str
    key: str
    operation: str
    fingerprint: str

    def __post_init__(self) -> None:
        if len(self.key) > MAX_KEY_LENGTH:
            raise InvalidArgumentError("idempotency_key", f"is longer than {MAX_KEY_LENGTH} characters")

    @classmethod
    def of(cls, actor: str, key: str, operation: str, values: Mapping[str, Any]) -> IdempotencyKey:
        """The key ``actor`` sent with a request for ``operation`` with ``values``.

        Raises:
            InvalidArgumentError: the key is too long.
        """
        return cls(actor, key, operation, request_hash(operation, values))

    def earlier(self, session: Session) -> str | None:
        """The id of what an earlier request with this key produced, if there was one.

        Raises:
            ConflictError: the key was used for a different request.
        """
        if not self.key:
            return None
        record = session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.actor == self.actor, IdempotencyRecord.key == self.key
            )
        ).scalar_one_or_none()
        if record is None:
            return None
        if record.operation != self.operation or record.request_hash != self.fingerprint:
            raise ConflictError(f"idempotency key {self.key!r} was already used for a different request")
        return record.result_id

    def remember(self, session: Session, result_id: str, now: int) -> None:
        """Record that this request produced ``result_id`` (in the transaction that produced it)."""
        if self.key:
            session.add(
                IdempotencyRecord(
                    actor=self.actor,
                    key=self.key,
                    operation=self.operation,
                    request_hash=self.fingerprint,
                    result_id=result_id,
                    created_at=now,
                )
            )
