"""An in-process :class:`~clearance.openid4vc.presentation.PresentationBackend`, behind one lock.

The reference for what the node's store must do atomically (the node implements the same in
its own store), and what the tests run. Deciding is a callable given at construction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from clearance.openid4vc.presentation import PresentationRequest
from clearance.trust import TrustStore
from clearance.verify import StalenessPolicy, VerifiedPresentation

DecideFunction = Callable[[PresentationRequest, VerifiedPresentation, int], Mapping[str, Any]]


class MemoryPresentationBackend:
    """Open requests in memory (at most ``max_open``: the oldest is dropped past it), answered once."""

    def __init__(
        self,
        trust: TrustStore,
        decide: DecideFunction,
        *,
        policy: StalenessPolicy | None = None,
        max_open: int = 10_000,
    ) -> None:
        self._trust = trust
        self._policy = policy or StalenessPolicy()
        self._decide = decide
        self._max = max_open
        self._lock = threading.Lock()
        self._open: OrderedDict[str, PresentationRequest] = OrderedDict()
        self.decisions: list[tuple[str, Mapping[str, Any]]] = []
        self.refusals: list[tuple[str | None, str]] = []

    def save(self, started: PresentationRequest) -> None:
        with self._lock:
            self._open[started.request_id] = started
            while len(self._open) > self._max:
                self._open.popitem(last=False)

    def load(self, request_id: str, now: int) -> PresentationRequest | None:
        with self._lock:
            started = self._open.get(request_id)
            if started is not None and now >= started.request.expires_at:
                del self._open[request_id]
                return None
            return started

    def complete(self, request_id: str, now: int) -> bool:
        with self._lock:
            started = self._open.pop(request_id, None)
            return started is not None and now < started.request.expires_at

    def trust(self) -> tuple[TrustStore, StalenessPolicy]:
        return self._trust, self._policy

    def decide(
        self, started: PresentationRequest, verified: VerifiedPresentation, now: int
    ) -> Mapping[str, Any]:
        decision = self._decide(started, verified, now)
        with self._lock:
            self.decisions.append((started.request_id, decision))
        return decision

    def refused(self, started: PresentationRequest | None, reason: str, now: int) -> None:
        with self._lock:
            self.refusals.append((None if started is None else started.request_id, reason))
