"""Fixtures for the node tests: in-memory gatekeepers over factory trust material, and the real thing.

In memory: :class:`Desk`, a :class:`~node.gatekeeper.Gatekeeper` over a
trust store built from :mod:`tests.factories` worlds, with a real decision
log in ``tmp_path`` and a clock the test moves; :class:`OfflineNode` (fixture
``node``), a real store, applier and syncer fed documents by the test. Real:
a registry server and node processes (:mod:`tests.node.harness`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from clearance.keys import PublicKey, SigningKey
from clearance.statusdelta import sign_status_delta
from clearance.trust import TrustStore
from clearance.verify import MemoryNonceStore, NonceStore, StalenessPolicy, VerifiedPresentation
from node.decision_log import DecisionLog
from node.decisions import Label
from node.facility import FacilityIdentity
from node.gatekeeper import Gatekeeper, LoggedDecision
from node.state import TrustedState
from node.store import NodeStore
from node.sync import Syncer, UpdateApplier
from tests.factories import DAY, NOW, Holder, RegistryWorld, present_credential
from tests.node.harness import RegistryHarness, SharedClock

AUDIENCE = "node-a"


@dataclass
class Desk:
    """A node's decision desk in memory: trust, nonces, own facility credential, decision log."""

    gatekeeper: Gatekeeper
    clock: list[int]
    node_key: SigningKey

    @property
    def now(self) -> int:
        return self.clock[0]

    def at(self, seconds: int) -> None:
        self.clock[0] = seconds

    def present(
        self,
        credential: str,
        holder: Holder,
        *,
        disclose: tuple[str, ...] = ("employer",),
        nonce: str | None = None,
    ) -> str:
        """A presentation bound to ``nonce`` (a fresh local challenge's when None)."""
        nonce = nonce if nonce is not None else self.gatekeeper.challenge().nonce
        return present_credential(
            credential, holder, nonce=nonce, audience=AUDIENCE, disclose=disclose, issued_at=self.now
        )

    def facility_of(self, world: RegistryWorld, *, org_id: str = "org-b", level: str = "SECRET") -> str:
        """Another organization's facility presentation, bound to one of our nonces."""
        node_key = SigningKey.generate()
        credential = world.facility(node_key, org_id=org_id, level=level)
        return self.present(credential, Holder(node_key), disclose=())

    def authorize(self, label: Label, presentation: str, facility: str = "") -> LoggedDecision:
        return self.gatekeeper.authorize(label, presentation, facility)

    def verify_facility(self, presentation: str) -> VerifiedPresentation:
        return self.gatekeeper.facility.verify_peer(presentation)


def make_desk(
    trust: TrustStore,
    log_path: Path,
    *,
    facility: str | None,
    node_key: SigningKey,
    now: int = NOW,
    policy: StalenessPolicy | None = None,
    peer_nonces: NonceStore | None = None,
    state: TrustedState | None = None,
) -> Desk:
    """A desk over ``trust`` (or over ``state``, a trust state the test controls, when given)."""
    clock = [now]
    state = state if state is not None else TrustedState(trust)
    nonces = MemoryNonceStore()
    policy = policy or StalenessPolicy()
    identity = FacilityIdentity(
        key=node_key,
        credential=facility,
        audience=AUDIENCE,
        trust=lambda: state.current,
        nonces=nonces,
        policy=policy,
        clock=lambda: clock[0],
    )
    gatekeeper = Gatekeeper(
        state,
        audience=AUDIENCE,
        nonces=nonces,
        nonce_ttl=300,
        policy=policy,
        clock=lambda: clock[0],
        facility=identity,
        decisions=DecisionLog(log_path),
        peer_nonces=peer_nonces,
    )
    return Desk(gatekeeper, clock, node_key)


DeskFactory = Callable[..., Desk]


@pytest.fixture
def desk_for(tmp_path: Path) -> Iterator[DeskFactory]:
    """``desk_for(trust, world)``: a desk whose own organization is cleared by ``world``."""
    desks: list[Desk] = []

    def build(
        trust: TrustStore, world: RegistryWorld, *, own_facility: bool = True, **options: object
    ) -> Desk:
        key = SigningKey.generate()
        credential = world.facility(key, org_id="org-a") if own_facility else None
        path = tmp_path / f"decisions-{len(desks)}.sqlite3"
        desk = make_desk(trust, path, facility=credential, node_key=key, **options)  # type: ignore[arg-type]
        desks.append(desk)
        return desk

    yield build
    for desk in desks:
        desk.gatekeeper.decisions.close()


class OfflineNode:
    """An applier and a syncer over a real store, fed documents by the test (no registry)."""

    def __init__(self, path: Path, world: RegistryWorld, clock: list[int]) -> None:
        self.path = path
        self.world = world
        self.store = NodeStore(path)
        self.store.set_meta("root_jwk", json.dumps(world.root.public.jwk))
        self.state = TrustedState(self.store.rebuild(world.root.public))
        self.clock = clock
        self.channel = grpc.insecure_channel("127.0.0.1:9")  # nothing listens: repairs fail fast
        self.syncer = Syncer(
            UpdateApplier(self.state, self.store, lambda: clock[0]),
            self.state,
            self.store,
            self.channel,
            clock=lambda: clock[0],
        )

    @property
    def trust(self) -> TrustStore:
        return self.state.current

    def delta(self, base_seq: int, updates: list[tuple[int, int]], *, at: int = NOW) -> str:
        for index, status in updates:
            self.world.status_list.set(index, status)
        self.world.seq = base_seq + 1
        return sign_status_delta(
            self.world.issuing,
            uri=self.world.status_uri,
            issued_at=at,
            expires_at=at + DAY,
            base_seq=base_seq,
            updates=updates,
        )

    def rebuilt(self, root: PublicKey | None = None, *, repair: bool = False) -> TrustStore:
        """What a restarted node would trust: the store replayed from ``root`` (the pinned one)."""
        store = NodeStore(self.path)
        try:
            return store.rebuild(root or self.world.root.public, repair=repair)
        finally:
            store.close()

    def close(self) -> None:
        self.channel.close()
        self.store.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OfflineNode]:
    world = RegistryWorld.create("JP")
    synced = OfflineNode(tmp_path / "store.sqlite3", world, [NOW])
    assert synced.syncer.receive("trust_bundle", world.bundle())
    assert synced.syncer.receive("status_list", world.status_token())
    yield synced
    synced.close()


@pytest.fixture
def clock(tmp_path: Path) -> SharedClock:
    return SharedClock(tmp_path / "clock")


@pytest.fixture
def registry(tmp_path: Path, clock: SharedClock, database_url: str) -> Iterator[RegistryHarness]:
    """A real registry server on loopback (the database under test), driven by ``clock``."""
    harness = RegistryHarness(tmp_path / "registry", clock, database_url).start()
    try:
        yield harness
    finally:
        harness.stop()
