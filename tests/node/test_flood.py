"""A challenge flood from thousands of source addresses leaves honest nonces usable, in bounded memory.

Each flooding connection comes from its own loopback address (any of
127.0.0.0/8 is this machine), pipelining ``PeerChallenge`` calls over real
HTTP/2 (:mod:`tests.node.rawgrpc`). Limits are scaled down so that the flood
stays short; the arithmetic is the same as with the defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from clearance.channel import open_channel
from clearance.keys import SigningKey
from clearance.v1 import common_pb2, node_pb2, node_pb2_grpc
from clearance.verify import MemoryNonceStore
from node.client import NodeClient
from node.decisions import Label
from node.peers import PeerSessions
from node.ratelimit import CallerLimiter
from node.server import LOCAL_LIMITS, PEER_LIMITS, RunningServer, start_local_api, start_peer_api
from node.servicers import NodeServicer, PeerServicer
from node.status import describe
from node.sync import SyncStatus
from tests.factories import NOW, Holder, RegistryWorld, Verifier, present_credential
from tests.node.conftest import AUDIENCE, Desk, DeskFactory
from tests.node.rawgrpc import RawGrpcConnection

TOKEN = "local-token-for-tests"
CHALLENGE = "/clearance.v1.PeerService/PeerChallenge"
CALLS_PER_ADDRESS = 3
HONEST = Label("JP", "SECRET", "joint-research", ())


@dataclass
class Flood:
    issued: int = 0
    refused: int = 0


def flood(server: RunningServer, sources: list[str]) -> Flood:
    """``CALLS_PER_ADDRESS`` pipelined challenges from each of ``sources``, on one connection each."""
    host, _, port = server.address.rpartition(":")

    def from_one(source: str) -> tuple[int, int]:
        with RawGrpcConnection(host, int(port), source=source) as connection:
            streams = [connection.unary(CHALLENGE, b"") for _ in range(CALLS_PER_ADDRESS)]
            connection.wait(*streams)
            statuses = [connection.results[s].status for s in streams]
        return statuses.count(0), len(statuses) - statuses.count(0)

    outcome = Flood()
    with ThreadPoolExecutor(4) as pool:
        for issued, refused in pool.map(from_one, sources):
            outcome.issued += issued
            outcome.refused += refused
    return outcome


@dataclass
class Node:
    """A desk served on both ports."""

    desk: Desk
    world: RegistryWorld
    peer: RunningServer
    local: RunningServer

    def close(self) -> None:
        self.peer.stop(0.5)
        self.local.stop(0.5)


def serve(desk: Desk, world: RegistryWorld, callers: CallerLimiter) -> Node:
    gatekeeper = desk.gatekeeper
    peer = start_peer_api(
        PeerServicer(gatekeeper, PeerSessions(gatekeeper)),
        "127.0.0.1:0",
        tls=None,
        limits=PEER_LIMITS,
        callers=callers,
    )
    status = lambda: describe(gatekeeper.state.current, SyncStatus(), [], gatekeeper.policy, desk.now)  # noqa: E731
    local = start_local_api(NodeServicer(gatekeeper, status), "127.0.0.1:0", TOKEN, limits=LOCAL_LIMITS)
    return Node(desk, world, peer, local)


@pytest.fixture
def node(desk_for: DeskFactory) -> Iterator[Node]:
    world = RegistryWorld.create("JP")
    desk = desk_for(Verifier.synced(world).trust, world, peer_nonces=MemoryNonceStore(max_outstanding=1_000))
    running = serve(desk, world, CallerLimiter(rate=0.01, burst=5, prefix_rate=0.01, prefix_burst=50))
    yield running
    running.close()


def honest_session(node: Node) -> tuple[node_pb2_grpc.PeerServiceStub, str, str]:
    """An honest peer node at 127.0.0.1: a nonce for its facility presentation, and one for a person."""
    channel = open_channel(node.peer.address, insecure=True)
    stub = node_pb2_grpc.PeerServiceStub(channel)
    for_facility = stub.PeerChallenge(node_pb2.PeerChallengeRequest(), timeout=10).nonce
    for_person = stub.PeerChallenge(node_pb2.PeerChallengeRequest(), timeout=10).nonce
    return stub, for_facility, for_person


def open_and_present(
    node: Node, stub: node_pb2_grpc.PeerServiceStub, for_facility: str, for_person: str
) -> bool:
    """The honest peer opens its session and presents a person, with the nonces it was given earlier."""
    key = SigningKey.generate()
    facility = present_credential(
        node.world.facility(key, org_id="org-b"),
        Holder(key),
        nonce=for_facility,
        audience=AUDIENCE,
        issued_at=NOW,
    )
    session = stub.OpenSession(
        node_pb2.OpenSessionRequest(
            facility_presentation=facility, caller_nonce="n" * 22, caller_audience="org-b"
        ),
        timeout=10,
    )
    credential, holder = node.world.issue()
    person = present_credential(
        credential, holder, nonce=for_person, audience=AUDIENCE, issued_at=NOW, disclose=("employer",)
    )
    decision = stub.Present(
        node_pb2.PresentRequest(
            session_id=session.session_id,
            label=common_pb2.Label(jurisdiction="JP", level="SECRET", category="joint-research"),
            presentation=person,
        ),
        timeout=10,
    ).decision
    return decision.code == "allowed"


def test_a_flood_from_2048_addresses_of_eight_prefixes_leaves_an_honest_peer_nonce_usable(node: Node) -> None:
    stub, for_facility, for_person = honest_session(node)
    sources = [f"127.1.{network}.{host}" for network in range(8) for host in range(256)]

    outcome = flood(node.peer, sources)

    # Per address alone would have let 2048 x 3 = 6,144 through: six times the peer store.
    assert outcome.issued <= 8 * 50 + 8  # each /24's burst, and what it refilled meanwhile
    assert outcome.refused >= len(sources) * CALLS_PER_ADDRESS - outcome.issued
    assert open_and_present(node, stub, for_facility, for_person)


def test_a_flood_that_churns_the_peer_store_never_touches_the_organizations_own_nonces(
    desk_for: DeskFactory,
) -> None:
    world = RegistryWorld.create("JP")
    desk = desk_for(Verifier.synced(world).trust, world, peer_nonces=MemoryNonceStore(max_outstanding=1_000))
    callers = CallerLimiter(rate=0.01, burst=2, prefix_rate=0.01, prefix_burst=2, max_keys=1_000)
    node = serve(desk, world, callers)
    client = NodeClient(node.local.address, TOKEN)
    try:
        own = client.challenge().nonce  # an employee's wallet is about to present
        sources = [f"127.{2 + n // 256}.{n % 256}.1" for n in range(2_048)]  # one /24 each

        outcome = flood(node.peer, sources)

        assert outcome.issued >= 2_048 * 2 - 50  # four times what the peer store holds: it churned
        assert callers.remembered()[:2] == (1_000, 1_000)  # the limiter's memory stayed bounded
        credential, holder = world.issue()
        presentation = present_credential(
            credential, holder, nonce=own, audience=AUDIENCE, issued_at=NOW, disclose=("employer",)
        )
        assert client.authorize(HONEST, presentation).code == "allowed"
    finally:
        client.close()
        node.close()
