"""What every registry operation needs, passed in rather than looked up.

:class:`RegistryContext` bundles the configuration, the database, the keys,
the clock and the publication hub. Tests build one with a fake clock; the
server builds one at start.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.encoding import canonical_json
from clearance.errors import ConflictError, InvalidArgumentError
from registry.config import RegistryConfig
from registry.policy import Caller
from registry.store.batching import WriteBatcher
from registry.store.db import Database
from registry.store.keyring import KeyRing
from registry.store.models import IdempotencyRecord

Clock = Callable[[], int]
T = TypeVar("T")


def system_clock() -> int:
    return int(time.time())


class ChangeListener(Protocol):
    """Told after a transaction commits that publications may have changed."""

    def publications_changed(self) -> None: ...


@dataclass
class Counters:
    """Business counters exported as metrics (issuances, revocations, ...)."""

    values: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.values[name] = self.values.get(name, 0) + amount


@dataclass
class RegistryContext:
    config: RegistryConfig
    db: Database
    keys: KeyRing
    clock: Clock = system_clock
    listeners: list[ChangeListener] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    _writer: WriteBatcher | None = field(default=None, repr=False)
    _writer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _resources: dict[str, Any] = field(default_factory=dict, repr=False)

    def resource(self, name: str, make: Callable[[], T]) -> T:
        """This context's one ``name`` object (a cache, a pool), made on first use.

        Kept on the context itself, so two registries in one process (tests,
        the demo) never share one, and it goes away with its context.
        """
        with self._writer_lock:
            if name not in self._resources:
                self._resources[name] = make()
            value: T = self._resources[name]
            return value

    def drop_resource(self, name: str) -> Any:
        with self._writer_lock:
            return self._resources.pop(name, None)

    def __post_init__(self) -> None:
        self.db.on_publication(self.changed)

    def now(self) -> int:
        return self.clock()

    @property
    def writer(self) -> WriteBatcher:
        """The group-commit writer of this process (started on first use)."""
        with self._writer_lock:
            if self._writer is None:
                self._writer = WriteBatcher(self.db)
            return self._writer

    def close(self) -> None:
        """Stop the writer and release database connections."""
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.db.dispose()

    def changed(self) -> None:
        """Wake the publication listeners.

        The database calls this after every committed transaction that wrote
        published material (:meth:`Database.on_publication`); nobody needs to.
        """
        for listener in self.listeners:
            listener.publications_changed()


def new_id(prefix: str) -> str:
    """A random, unguessable identifier such as ``org_5f3c2a9e1b7d40c8a6e2``."""
    return f"{prefix}_{secrets.token_hex(10)}"


def dumps(values: Iterable[str]) -> str:
    return json.dumps(list(values))


def loads_list(text: str | None) -> list[str]:
    """A JSON array of strings stored in a column (levels' categories, reasons)."""
    return list(_parsed_list(text or ""))


@functools.lru_cache(maxsize=1024)
def _parsed_list(text: str) -> tuple[str, ...]:
    # Stored category lists repeat across rows (there are few combinations): parse each once.
    if not text:
        return ()
    value = json.loads(text)
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def require_text(value: str, field_name: str, *, max_length: int = 2000, allow_empty: bool = False) -> str:
    """A trimmed text argument.

    Raises:
        InvalidArgumentError: empty (unless allowed), too long, or with control characters.
    """
    text = (value or "").strip()
    if not text and not allow_empty:
        raise InvalidArgumentError(field_name, "is required")
    if len(text) > max_length:
        raise InvalidArgumentError(field_name, f"is longer than {max_length} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise InvalidArgumentError(field_name, "contains control characters")
    return text


def request_hash(operation: str, values: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"op": operation, **values})).hexdigest()


def find_idempotent(
    session: Session, caller: Caller, key: str, operation: str, fingerprint: str
) -> str | None:
    """The id of what an earlier request with this idempotency key produced, if any.

    Raises:
        ConflictError: the key was used for a different request.
        InvalidArgumentError: the key is too long.
    """
    if not key:
        return None
    if len(key) > 128:
        raise InvalidArgumentError("idempotency_key", "is longer than 128 characters")
    record = session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.actor == caller.principal, IdempotencyRecord.key == key
        )
    ).scalar_one_or_none()
    if record is None:
        return None
    if record.operation != operation or record.request_hash != fingerprint:
        raise ConflictError(f"idempotency key {key!r} was already used for a different request")
    return record.result_id


def remember_idempotent(
    session: Session, caller: Caller, key: str, operation: str, fingerprint: str, result_id: str, now: int
) -> None:
    if key:
        session.add(
            IdempotencyRecord(
                actor=caller.principal,
                key=key,
                operation=operation,
                request_hash=fingerprint,
                result_id=result_id,
                created_at=now,
            )
        )
