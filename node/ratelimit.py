"""Per-caller rate limits for the node's unauthenticated peer calls.

``PeerChallenge`` and ``OpenSession`` answer anyone who can reach the peer port:
the first hands out a nonce, the second verifies a facility presentation (two
signatures). A token bucket per caller address bounds what one address can make
the node do; past it the call is refused with ``RESOURCE_EXHAUSTED`` before any
work is done. The table of addresses is bounded too: the least recently seen
address is forgotten first (it starts again with a full bucket, which costs an
attacker nothing it did not already have).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from clearance.errors import RateLimitedError

PEER_RATE = 10.0
"""Unauthenticated peer calls per second one address may sustain."""
PEER_BURST = 50
"""Calls one address may make at once before the rate applies."""
MAX_CALLERS = 10_000


def caller_address(peer: str) -> str:
    """The address part of a gRPC peer string (``ipv4:10.0.0.7:51234`` -> ``ipv4:10.0.0.7``).

    Ports change with every connection, so they are not part of who is calling.
    """
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return f"{kind}:{rest.rpartition(':')[0]}"
    return peer


class RateLimiter:
    """A token bucket per key; thread-safe; time injected."""

    def __init__(
        self,
        rate: float = PEER_RATE,
        burst: int = PEER_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_CALLERS,
    ) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate, burst and max_keys must be positive")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._max = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """key -> (tokens, when they were counted), least recently seen first."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Callers remembered."""
        with self._lock:
            return len(self._buckets)

    def take(self, key: str) -> None:
        """Spend one token of ``key``'s bucket.

        Raises:
            RateLimitedError: the bucket is empty; says when to try again.
        """
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - then) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self._rate
                raise RateLimitedError(f"too many requests from {key[:80]}; try again in {wait:.1f}s")
            self._buckets[key] = (tokens - 1.0, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
