"""How much of the registry a caller may hold: the serving limits and the admission counts.

Every limit is here, with its default; docs/security.md says why each value.
A call is admitted in one of four classes, each with its own budget, so no
class can use up another's:

* **authenticated unary calls** (staff, nodes): :attr:`ServingLimits.authenticated_calls`
  in flight (reading, queued for a worker, running);
* **anonymous unary calls** (public documents, enrollment with a one-time
  token, health): :attr:`ServingLimits.anonymous_calls`;
* **subscriber streams** (``Watch`` with an enrolled node's credential):
  :attr:`ServingLimits.subscriber_streams`, at most
  :attr:`ServingLimits.streams_per_principal` per node (the newest wins: a
  node reconnecting after a half-open connection ends its stale stream);
* **anonymous streams** (``Watch`` without a credential, health watch,
  reflection): :attr:`ServingLimits.anonymous_streams`.

Beyond a budget a call is refused at once with RESOURCE_EXHAUSTED, before its
request body is read. The counts live on the event loop (one thread), so
they need no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from clearance.errors import RateLimitedError
from registry.policy import Caller

KIB = 1024
MIB = 1024 * KIB
BULK_METHODS = frozenset({"/clearance.v1.CredentialService/BulkIssueCredentials"})


@dataclass(frozen=True)
class ServingLimits:
    """Every limit of the registry's gRPC server (see docs/security.md for the reasons)."""

    workers: int = 256
    """Threads that run the (synchronous) handlers of unary calls."""
    authenticated_calls: int = 1024
    anonymous_calls: int = 32
    subscriber_streams: int = 20_000
    anonymous_streams: int = 4_096
    streams_per_principal: int = 2
    anonymous_body_seconds: float = 5.0
    """Time an anonymous caller has to deliver its request after its headers."""
    authenticated_body_seconds: float = 60.0
    request_bytes: int = 64 * KIB
    """Largest request of any method but the bulk ones (documents are tens of KB)."""
    bulk_request_bytes: int = 4 * MIB
    """Largest bulk request: 10,000 issuance requests with idempotency keys fit."""
    keepalive_seconds: int = 30
    keepalive_timeout_seconds: int = 10
    connection_idle_seconds: int = 300
    connection_age_seconds: int = 7_200
    connection_age_grace_seconds: int = 60
    handshake_seconds: int = 10
    streams_per_connection: int = 1_024

    @property
    def max_message_bytes(self) -> int:
        """The transport's own cap: a larger message is refused from its length prefix, unread."""
        return max(self.request_bytes, self.bulk_request_bytes)

    @property
    def max_concurrent_rpcs(self) -> int:
        """gRPC's own hard cap on calls, above the sum of the budgets (a backstop)."""
        return (
            self.authenticated_calls
            + self.anonymous_calls
            + self.subscriber_streams
            + self.anonymous_streams
            + 64
        )

    def request_limit(self, method: str) -> int:
        return self.bulk_request_bytes if method in BULK_METHODS else self.request_bytes

    def grpc_options(self) -> list[tuple[str, int]]:
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", 64 * MIB),
            ("grpc.max_concurrent_streams", self.streams_per_connection),
            ("grpc.keepalive_time_ms", self.keepalive_seconds * 1000),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_seconds * 1000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.max_connection_idle_ms", self.connection_idle_seconds * 1000),
            ("grpc.max_connection_age_ms", self.connection_age_seconds * 1000),
            ("grpc.max_connection_age_grace_ms", self.connection_age_grace_seconds * 1000),
            ("grpc.server_handshake_timeout_ms", self.handshake_seconds * 1000),
        ]


@dataclass
class Slot:
    """One admitted call; :meth:`release` gives its place back (once)."""

    _release: Callable[[Slot], None]
    principal: str | None = None
    end: Callable[[], None] | None = None
    """How to end this stream early (set by the stream; used when its principal opens a newer one)."""
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._release(self)


@dataclass
class Admission:
    """The four budgets of :mod:`registry.api.admission`, counted on the event loop."""

    limits: ServingLimits
    counts: dict[str, int] = field(
        default_factory=lambda: {"authenticated": 0, "anonymous": 0, "subscribers": 0, "anonymous_streams": 0}
    )
    _by_principal: dict[str, OrderedDict[int, Slot]] = field(default_factory=dict)

    def _take(self, kind: str, limit: int, what: str) -> Slot:
        if self.counts[kind] >= limit:
            raise RateLimitedError(f"the registry is serving as many {what} as it allows; try again later")
        self.counts[kind] += 1

        def give_back(_slot: Slot) -> None:
            self.counts[kind] -= 1

        return Slot(give_back)

    def call(self, who: Caller | None) -> Slot:
        """A place for one unary call.

        Raises:
            RateLimitedError: the caller's class is full.
        """
        if who is None:
            return self._take("anonymous", self.limits.anonymous_calls, "anonymous calls")
        return self._take("authenticated", self.limits.authenticated_calls, "calls")

    def stream(self, who: Caller | None) -> Slot:
        """A place for one stream; a principal's oldest stream ends when it opens one too many.

        Raises:
            RateLimitedError: the caller's class is full.
        """
        if who is None:
            return self._take("anonymous_streams", self.limits.anonymous_streams, "anonymous streams")
        held = self._by_principal.setdefault(who.principal, OrderedDict())
        while len(held) >= self.limits.streams_per_principal:
            _key, oldest = held.popitem(last=False)
            if oldest.end is not None:
                oldest.end()
        slot = self._take("subscribers", self.limits.subscriber_streams, "subscriber streams")
        slot.principal = who.principal
        inner = slot._release

        def give_back(this: Slot) -> None:
            inner(this)
            mine = self._by_principal.get(who.principal)
            if mine is not None:
                mine.pop(id(this), None)
                if not mine:
                    del self._by_principal[who.principal]

        slot._release = give_back
        held[id(slot)] = slot
        return slot
