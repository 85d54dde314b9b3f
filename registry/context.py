"""What every registry operation needs, passed in rather than looked up.

:class:`RegistryContext` bundles the configuration, the database, the keys,
the clock, the randomness and signing of issuance, and what one process keeps
between requests (the group-commit writer, the open status list). Tests build
one with a fake clock and may inject their own random source or signer; the
server builds one at start.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from registry.config import RegistryConfig
from registry.signing import CredentialSpec, sign_all
from registry.store.batching import WriteBatcher
from registry.store.db import Database
from registry.store.keyring import KeyRing
from registry.store.statuslists import OpenListCache, RandomIndex

Clock = Callable[[], int]
T = TypeVar("T")


def system_clock() -> int:
    return int(time.time())


class ChangeListener(Protocol):
    """Told after a transaction commits that publications may have changed."""

    def publications_changed(self) -> None: ...


class CredentialSigner(Protocol):
    """Turns credential specifications into signed SD-JWTs."""

    def sign(self, specs: Sequence[CredentialSpec]) -> list[str]:
        """One SD-JWT per spec, in order."""
        ...


class IssuingKeySigner:
    """Signs with a context's current issuing key: on every core when the batch is large."""

    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx

    def sign(self, specs: Sequence[CredentialSpec]) -> list[str]:
        return sign_all(self._ctx, self._ctx.keys.issuing_key, list(specs))


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
    """One registry: its settings, stores, keys, clock, and what its process keeps between requests.

    Everything is this context's own, so two registries in one process (tests,
    the demo) share nothing, and it all goes away with the context.
    """

    config: RegistryConfig
    db: Database
    keys: KeyRing
    clock: Clock = system_clock
    listeners: list[ChangeListener] = field(default_factory=list)
    """Told after every committed transaction that changed published material."""
    counters: Counters = field(default_factory=Counters)
    random_index: RandomIndex = secrets.randbelow
    """Where status indices come from: uniform over a list (herd privacy)."""
    signer: CredentialSigner | None = None
    """How credentials are signed; the current issuing key unless one is given."""
    writer: WriteBatcher = field(init=False, repr=False)
    """The group-commit writer of this process."""
    open_list: OpenListCache = field(init=False, repr=False)
    """The status list new credentials go to."""
    _resources: dict[str, Any] = field(default_factory=dict, repr=False)
    _resources_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.writer = WriteBatcher(self.db)
        self.open_list = OpenListCache(self.db, self.config.status_list_uri, self.config.status_list_size)
        if self.signer is None:
            self.signer = IssuingKeySigner(self)
        self.db.on_publication(self.changed)

    def now(self) -> int:
        return self.clock()

    def sign(self, specs: Sequence[CredentialSpec]) -> list[str]:
        """The SD-JWTs of ``specs``, signed by this context's signer."""
        assert self.signer is not None  # set at construction
        return self.signer.sign(specs)

    def resource(self, name: str, make: Callable[[], T]) -> T:
        """This context's one ``name`` object, made on first use.

        Kept only for the modules that still hold a process object this way
        (the signing pools, partner sync); everything else is a typed attribute.
        """
        with self._resources_lock:
            if name not in self._resources:
                self._resources[name] = make()
            value: T = self._resources[name]
            return value

    def drop_resource(self, name: str) -> Any:
        with self._resources_lock:
            return self._resources.pop(name, None)

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    def changed(self) -> None:
        """Wake the publication listeners.

        The database calls this after every committed transaction that wrote
        published material (:meth:`Database.on_publication`); nobody needs to.
        """
        for listener in self.listeners:
            listener.publications_changed()
