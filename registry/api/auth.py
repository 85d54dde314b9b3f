"""Who is calling: bearer tokens checked against known keys, with bounded caches.

A call carrying ``authorization: Bearer <token>`` is authenticated in two
steps, both before its request body is parsed:

1. **On the event loop, from memory**: the token's structure, then its
   signature against the key of its ``kid`` (RFC 7638 thumbprint) if that key
   is already known. A token seen before (and verified then) costs one cache
   look-up. A ``kid`` known *not* to exist is refused at once.
2. **In a worker thread, from the database**: a ``kid`` seen for the first
   time is looked up in one query (staff and nodes together) by a small
   pool with a bounded queue; an unknown key is remembered as unknown only
   briefly. Then, on *every* call, the principal's ``disabled`` flag is read
   (one primary-key look-up), so disabling an account takes effect on its
   next call on every replica, with no cache in between.

Every cache here is keyed by caller input and therefore bounded (least
recently used entries go first), and a failure is never remembered for long:
an attacker sending tokens with random ``kid`` values costs at most one
queued look-up each, refused when the queue is full, and no lasting memory.

Errors::

    AuthenticationError  no token, malformed, unknown key, bad signature, expired, disabled account
    RateLimitedError     too many unknown keys being looked up at once (try again)
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import literal, select, union_all

from clearance.access import parse_access_token, verify_access_token
from clearance.errors import AuthenticationError, RateLimitedError
from clearance.keys import PublicKey
from registry.context import RegistryContext
from registry.policy import Caller, Role
from registry.store.models import Node, Staff

current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("current_caller", default=None)
"""The authenticated caller of the call being served (None for an anonymous one)."""

K = TypeVar("K")
V = TypeVar("V")

KNOWN_KEYS = 65_536
"""Keys remembered (staff and nodes; a key never changes once registered)."""
UNKNOWN_KEYS = 4_096
"""``kid`` values remembered as unknown, each for :data:`UNKNOWN_KEY_SECONDS`."""
UNKNOWN_KEY_SECONDS = 5.0
VERIFIED_TOKENS = 16_384
"""Tokens whose signature was checked, remembered until they expire."""
PENDING_LOOKUPS = 64
"""Look-ups of new ``kid`` values queued at once; beyond, a call is refused (RESOURCE_EXHAUSTED)."""
PENDING_CHECKS = 1_024
"""Account checks of verified callers (stream openings) queued at once; beyond, RESOURCE_EXHAUSTED."""
LOOKUP_THREADS = 2


def caller() -> Caller:
    """The authenticated caller of the current call (set before the handler runs).

    Raises:
        AuthenticationError: called outside an authenticated call.
    """
    value = current_caller.get()
    if value is None:
        raise AuthenticationError("this call needs an authenticated caller")
    return value


class BoundedCache(Generic[K, V]):
    """A least-recently-used map with a size cap and a per-entry expiry (monotonic seconds)."""

    def __init__(self, capacity: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: K, value: V, *, ttl: float = float("inf")) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class KnownKey:
    """A registered key and the principal it belongs to (neither ever changes)."""

    key: PublicKey
    caller: Caller


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The bearer token of a call's metadata, if any (the last one wins, as before)."""
    token = None
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            token = value[7:].strip() or None
    return token


class Authenticator:
    """Turns a bearer token into a :class:`Caller` (see the module docstring for the steps)."""

    def __init__(self, ctx: RegistryContext, *, wall: Callable[[], float] = time.monotonic) -> None:
        self._ctx = ctx
        self._known: BoundedCache[str, KnownKey] = BoundedCache(KNOWN_KEYS, clock=wall)
        self._unknown: BoundedCache[str, bool] = BoundedCache(UNKNOWN_KEYS, clock=wall)
        self._tokens: BoundedCache[str, Caller] = BoundedCache(VERIFIED_TOKENS, clock=wall)
        self.lookups = futures.ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="auth-lookup")
        """The small pool that reads keys and account flags for calls not yet admitted."""
        self._pending = 0
        self._checking = 0
        self.database_lookups = 0
        """How many ``kid`` look-ups reached the database (for tests and metrics)."""

    @property
    def cached(self) -> int:
        """Entries held in all caches together (each is bounded)."""
        return len(self._known) + len(self._unknown) + len(self._tokens)

    async def authenticate(self, token: str) -> Caller:
        """The caller a token proves; never blocks the event loop on the database.

        Raises:
            AuthenticationError: the token does not prove a known principal.
            RateLimitedError: too many new keys are being looked up right now.
        """
        now = self._ctx.now()
        who = self._tokens.get(token)
        if who is not None:
            return who
        jws = parse_access_token(token)
        kid = jws.kid or ""
        known = self._known.get(kid)
        if known is None:
            if self._unknown.get(kid) is not None:
                raise AuthenticationError("access token is signed by a key this registry does not know")
            if self._pending >= PENDING_LOOKUPS:
                raise RateLimitedError("too many unknown keys are being checked; try again")
            self._pending += 1  # only the event loop touches the counter
            try:
                known = await asyncio.get_running_loop().run_in_executor(self.lookups, self._lookup, kid)
            finally:
                self._pending -= 1
            if known is None:
                raise AuthenticationError("access token is signed by a key this registry does not know")
        claims = verify_access_token(jws, known.key, audience=self._ctx.config.issuer, now=now)
        if claims.principal != known.caller.principal:
            raise AuthenticationError("access token names another principal than its key")
        self._tokens.put(token, known.caller, ttl=max(0, claims.expires_at - now))
        return known.caller

    def preload(self) -> int:
        """Remember every registered key now (at start), so a reconnecting crowd needs no look-up.

        Returns:
            How many keys were loaded (at most :data:`KNOWN_KEYS`).

        Raises:
            StorageError: the database failed.
        """
        with self._ctx.db.connection(readonly=True) as connection:
            rows = connection.execute(_principals().limit(KNOWN_KEYS)).all()
        for _table, principal, role, organization, jwk, kid in rows:
            key = PublicKey.from_jwk(json.loads(jwk))
            self._known.put(kid, KnownKey(key, Caller(principal, Role(role), organization)))
        return len(rows)

    def _lookup(self, kid: str) -> KnownKey | None:
        """One query for the key ``kid`` among staff and nodes (in a look-up thread)."""
        self.database_lookups += 1
        query = _principals(kid)
        with self._ctx.db.connection(readonly=True) as connection:
            row = connection.execute(query).first()
        if row is None:
            self._unknown.put(kid, True, ttl=UNKNOWN_KEY_SECONDS)
            return None
        known = KnownKey(PublicKey.from_jwk(json.loads(row[4])), Caller(row[1], Role(row[2]), row[3]))
        self._known.put(kid, known)
        return known

    async def check_enabled(self, who: Caller) -> None:
        """:meth:`require_enabled` from the event loop, on the look-up pool (bounded like look-ups).

        Raises:
            AuthenticationError: the account is disabled or gone.
            RateLimitedError: too many look-ups are queued.
            StorageError: the database failed.
        """
        if self._checking >= PENDING_CHECKS:
            raise RateLimitedError("too many accounts are being checked; try again")
        self._checking += 1
        try:
            await asyncio.get_running_loop().run_in_executor(self.lookups, self.require_enabled, who)
        finally:
            self._checking -= 1

    def require_enabled(self, who: Caller) -> None:
        """Refuse a disabled (or deleted) account: one primary-key read, on every call.

        Called in a worker thread, before the request is parsed.

        Raises:
            AuthenticationError: the account is disabled or gone.
            StorageError: the database failed (the call is refused, never let through).
        """
        table = Node if who.role is Role.NODE else Staff
        with self._ctx.db.connection(readonly=True) as connection:
            disabled = connection.execute(select(table.disabled).where(table.id == who.principal)).scalar()
        if disabled is None or disabled:
            raise AuthenticationError("this account is disabled")

    def forget(self) -> None:
        """Drop every cache (nothing depends on it: the disabled flag is read on every call)."""
        self._known.clear()
        self._unknown.clear()
        self._tokens.clear()

    def close(self) -> None:
        self.lookups.shutdown(wait=False, cancel_futures=True)


def _principals(kid: str | None = None) -> Any:
    """Staff and nodes as (table, id, role, organization, public JWK, kid), for one ``kid`` or all."""
    staff = select(
        literal("staff"), Staff.id, Staff.role, Staff.organization_id, Staff.public_jwk, Staff.key_thumbprint
    )
    nodes = select(
        literal("node"),
        Node.id,
        literal(Role.NODE.value),
        Node.organization_id,
        Node.public_jwk,
        Node.key_thumbprint,
    )
    if kid is not None:
        staff = staff.where(Staff.key_thumbprint == kid)
        nodes = nodes.where(Node.key_thumbprint == kid)
    return union_all(staff, nodes)
