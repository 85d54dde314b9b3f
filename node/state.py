"""What the node trusts right now: one :class:`TrustStore` snapshot, replaced whole.

Decisions run on many threads while the sync thread accepts updates. Rather
than lock the trust store for every verification, an update is applied to a
*copy* of the current snapshot, persisted, and only then published by
swapping one reference. A reader takes the reference once per decision and
sees a consistent state from start to end; a refused update or a failed
write publishes nothing, so memory never runs ahead of the store on disk.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import TypeVar

from clearance.trust import TrustStore

T = TypeVar("T")


def copy_trust(trust: TrustStore) -> TrustStore:
    """A copy that the ``update_*`` methods can change without touching ``trust``.

    The held documents themselves are immutable (a delta builds a new list), so
    copying the containers is enough.
    """
    return dataclasses.replace(
        trust,
        foreign=dict(trust.foreign),
        status_lists=dict(trust.status_lists),
        agreements=dict(trust.agreements),
        previous_roots=list(trust.previous_roots),
    )


class TrustedState:
    """Holds the current snapshot; writers serialize, readers never wait."""

    def __init__(self, trust: TrustStore) -> None:
        self._trust = trust
        self._writer = threading.Lock()

    @property
    def current(self) -> TrustStore:
        """The snapshot to decide on. Do not change it: use :meth:`update`."""
        return self._trust

    def update(self, change: Callable[[TrustStore], T], persist: Callable[[TrustStore, T], None]) -> T:
        """Apply ``change`` to a copy, ``persist`` the result, then publish it.

        If either raises, the published snapshot is unchanged and the exception
        propagates.
        """
        with self._writer:
            candidate = copy_trust(self._trust)
            result = change(candidate)
            persist(candidate, result)
            self._trust = candidate
            return result
