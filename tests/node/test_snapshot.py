"""One trust snapshot per decision: an update landing while a decision is being made is not half-seen.

:class:`UpdatedAfterFirstRead` is a :class:`~node.state.TrustedState` whose
readers can be interleaved with a writer: once armed, the first read of
``current`` publishes an update (through the real ``update``) right after
taking its snapshot, as the sync thread could. A decision that read the
trust state a second time would see the update in its second half only.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clearance.trust import TrustStore
from node.decisions import Label
from node.state import TrustedState
from tests.factories import NOW, RegistryWorld, Verifier
from tests.node.conftest import Desk, DeskFactory

ITEM = Label("JP", "SECRET", "cyber-threat", ())


class UpdatedAfterFirstRead(TrustedState):
    """Counts reads; when armed, the next read publishes ``update`` just after taking its snapshot."""

    def __init__(self, trust: TrustStore) -> None:
        super().__init__(trust)
        self.reads = 0
        self._armed: Callable[[TrustedState], None] | None = None

    def arm(self, update: Callable[[TrustedState], None]) -> None:
        self.reads = 0
        self._armed = update

    @property
    def current(self) -> TrustStore:
        snapshot = super().current
        self.reads += 1
        update, self._armed = self._armed, None
        if update is not None:
            update(self)
        return snapshot


def revoke(world: RegistryWorld, index: int) -> Callable[[TrustedState], None]:
    """An update that revokes credential ``index`` (a new status list, as the sync would apply it)."""

    def apply(state: TrustedState) -> None:
        world.status_list.set(index, 1)
        world.seq += 1
        token = world.status_token()
        state.update(lambda trust: trust.update_status_list(token, NOW), lambda _trust, _list: None)

    return apply


@pytest.fixture
def world() -> RegistryWorld:
    return RegistryWorld.create("JP")


@pytest.fixture
def racing(world: RegistryWorld, desk_for: DeskFactory) -> tuple[Desk, UpdatedAfterFirstRead]:
    state = UpdatedAfterFirstRead(Verifier.synced(world).trust)
    return desk_for(state.current, world, state=state), state


def test_authorize_decides_on_the_snapshot_it_read_first(
    world: RegistryWorld, racing: tuple[Desk, UpdatedAfterFirstRead]
) -> None:
    desk, state = racing
    credential, holder = world.issue(index=700)
    presentation = desk.present(credential, holder)
    state.arm(revoke(world, 700))  # lands right after the decision takes its snapshot

    decision = desk.authorize(ITEM, presentation).decision

    assert (decision.allowed, decision.code) == (True, "allowed")  # the snapshot before the revocation
    assert state.reads == 1
    after = desk.authorize(ITEM, desk.present(credential, holder)).decision
    assert after.code == "revoked"  # the update itself did land, whole, for the next decision


def test_a_peer_decision_decides_on_the_snapshot_it_read_first(
    world: RegistryWorld, racing: tuple[Desk, UpdatedAfterFirstRead]
) -> None:
    desk, state = racing
    recipient = desk.verify_facility(desk.facility_of(world))
    credential, holder = world.issue(index=701)
    nonce = desk.gatekeeper.peer_challenge().nonce
    presentation = desk.present(credential, holder, nonce=nonce)
    state.arm(revoke(world, 701))

    decision = desk.gatekeeper.authorize_for_peer(ITEM, presentation, recipient).decision

    assert (decision.allowed, decision.code) == (True, "allowed")
    assert state.reads == 1
