"""Per-caller limits for the node's unauthenticated peer calls: rate by address and by prefix, calls in flight.

Anyone who can reach the peer port may call ``PeerChallenge`` (a nonce),
``OpenSession`` (two signature checks) and ``Present`` (a decision, once a
session exists). What one caller can make the node do is bounded twice:

* a **token bucket per address** (:data:`ADDRESS_RATE`, :data:`ADDRESS_BURST`)
  and one **per network prefix**, the /24 of an IPv4 address or the /64 of an
  IPv6 one (:data:`PREFIX_RATE`, :data:`PREFIX_BURST`): a flood from many
  addresses of one network (any IPv6 /64 holds 2^64 of them) spends one
  bucket. A call is admitted only if both buckets hold a token, and a refused
  call spends neither.
* **calls in flight** per address (:data:`ADDRESS_IN_FLIGHT`) and per prefix
  (:data:`PREFIX_IN_FLIGHT`): calls admitted and not finished yet, whether
  waiting for their request or being worked on.

Past either, the call is refused with ``RESOURCE_EXHAUSTED`` before its
request is read. The tables are bounded: at most :data:`MAX_CALLERS` buckets
of each kind (the least recently seen is forgotten first, and starts again
with a full bucket, which costs an attacker nothing it did not already
have), and an in-flight entry exists only while a call does (the server's
admission cap bounds those).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from clearance.errors import RateLimitedError

ADDRESS_RATE = 10.0
"""Unauthenticated peer calls per second one address may sustain."""
ADDRESS_BURST = 50
"""Calls one address may make at once before the rate applies."""
PREFIX_RATE = 20.0
"""Calls per second all the addresses of one /24 (IPv4) or /64 (IPv6) may sustain together."""
PREFIX_BURST = 100
ADDRESS_IN_FLIGHT = 16
"""Calls of one address admitted and not finished (waiting for their request, or worked on)."""
PREFIX_IN_FLIGHT = 32
MAX_CALLERS = 10_000
"""Buckets remembered per kind (addresses; prefixes)."""


def caller_address(peer: str) -> str:
    """The address part of a gRPC peer string (``ipv4:10.0.0.7:51234`` -> ``ipv4:10.0.0.7``).

    Ports change with every connection, so they are not part of who is calling.
    """
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return f"{kind}:{rest.rpartition(':')[0]}"
    return peer


def caller_prefix(peer: str) -> str:
    """The network a gRPC peer calls from: its /24 (IPv4, also IPv4-mapped IPv6) or its /64 (IPv6).

    Anything else (a Unix socket, an address that does not parse) is its own prefix.
    """
    address = caller_address(peer)
    kind, _, host = address.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return address
    try:
        ip = ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = 24 if ip.version == 4 else 64
    return f"ipv{ip.version}:{ipaddress.ip_network(f'{ip}/{bits}', strict=False)}"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, as the limits see it: an address and the prefix it belongs to."""

    address: str
    prefix: str

    @classmethod
    def from_peer(cls, peer: str) -> Caller:
        return cls(caller_address(peer), caller_prefix(peer))


class _Buckets:
    """Token buckets by key, least recently seen first (not locked: the owner locks)."""

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate, burst and max_keys must be positive")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.table: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """key -> (tokens, when they were counted)."""

    def tokens(self, key: str, now: float) -> float:
        """Tokens ``key`` holds at ``now`` (refilled, capped at the burst); marks it recently seen."""
        tokens, then = self.table.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - then) * self.rate)
        self.table[key] = (tokens, now)
        return tokens

    def set(self, key: str, tokens: float, now: float) -> None:
        self.table[key] = (tokens, now)
        while len(self.table) > self.max_keys:
            self.table.popitem(last=False)

    def wait(self, tokens: float) -> float:
        return (1.0 - tokens) / self.rate


class CallerLimiter:
    """Rate by address and by prefix, and calls in flight, for one server's callers; thread-safe."""

    def __init__(
        self,
        *,
        rate: float = ADDRESS_RATE,
        burst: int = ADDRESS_BURST,
        prefix_rate: float = PREFIX_RATE,
        prefix_burst: int = PREFIX_BURST,
        in_flight: int = ADDRESS_IN_FLIGHT,
        prefix_in_flight: int = PREFIX_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_CALLERS,
    ) -> None:
        if in_flight < 1 or prefix_in_flight < 1:
            raise ValueError("in-flight limits must be positive")
        self._addresses = _Buckets(rate, burst, max_keys)
        self._prefixes = _Buckets(prefix_rate, prefix_burst, max_keys)
        self._max_in_flight = in_flight
        self._max_prefix_in_flight = prefix_in_flight
        self._in_flight: dict[str, int] = {}
        """Address or prefix -> calls admitted and not released; no entry at zero."""
        self._clock = clock
        self._lock = threading.Lock()

    def remembered(self) -> tuple[int, int, int]:
        """(address buckets, prefix buckets, in-flight entries) held now: each bounded."""
        with self._lock:
            return len(self._addresses.table), len(self._prefixes.table), len(self._in_flight)

    def admit(self, caller: Caller) -> None:
        """Admit one call of ``caller``: spend a token of both buckets and count it in flight.

        Every admitted call must be :meth:`release`\\ d exactly once.

        Raises:
            RateLimitedError: a bucket is empty or too many of the caller's calls are
                in flight; nothing was spent.
        """
        now = self._clock()
        with self._lock:
            if self._in_flight.get(caller.address, 0) >= self._max_in_flight:
                raise RateLimitedError(f"too many calls in flight from {caller.address[:80]}")
            if self._in_flight.get(caller.prefix, 0) >= self._max_prefix_in_flight:
                raise RateLimitedError(f"too many calls in flight from {caller.prefix[:80]}")
            mine = self._addresses.tokens(caller.address, now)
            shared = self._prefixes.tokens(caller.prefix, now)
            if mine < 1.0 or shared < 1.0:
                self._addresses.set(caller.address, mine, now)
                self._prefixes.set(caller.prefix, shared, now)
                who, wait = (
                    (caller.address, self._addresses.wait(mine))
                    if mine < 1.0
                    else (caller.prefix, self._prefixes.wait(shared))
                )
                raise RateLimitedError(f"too many requests from {who[:80]}; try again in {wait:.1f}s")
            self._addresses.set(caller.address, mine - 1.0, now)
            self._prefixes.set(caller.prefix, shared - 1.0, now)
            for key in {caller.address, caller.prefix}:
                self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def release(self, caller: Caller) -> None:
        """The admitted call of ``caller`` has finished."""
        with self._lock:
            for key in {caller.address, caller.prefix}:
                left = self._in_flight.get(key, 0) - 1
                if left > 0:
                    self._in_flight[key] = left
                else:
                    self._in_flight.pop(key, None)
