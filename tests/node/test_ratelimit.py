"""The peer port's unauthenticated calls are rate-limited per caller address."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from clearance.channel import open_channel
from clearance.errors import RateLimitedError
from clearance.v1 import node_pb2, node_pb2_grpc
from node.peers import PeerSessions
from node.ratelimit import CallerLimiter, RateLimiter, caller_address
from node.server import RunningServer, start_peer_api
from node.servicers import PeerServicer
from tests.factories import RegistryWorld, Verifier
from tests.node.conftest import Desk, DeskFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_gets_its_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.take("ipv4:10.0.0.7")
    with pytest.raises(RateLimitedError, match=r"try again in 0\.5s"):
        limiter.take("ipv4:10.0.0.7")
    clock.now += 0.5
    limiter.take("ipv4:10.0.0.7")
    with pytest.raises(RateLimitedError):
        limiter.take("ipv4:10.0.0.7")


def test_one_callers_flood_does_not_spend_anothers_bucket() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, clock=Clock())
    limiter.take("ipv4:10.0.0.7")
    limiter.take("ipv4:10.0.0.7")
    with pytest.raises(RateLimitedError):
        limiter.take("ipv4:10.0.0.7")
    limiter.take("ipv4:10.0.0.8")


def test_refused_calls_do_not_earn_credit_and_the_table_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock, max_keys=100)
    limiter.take("a")
    for _ in range(10):
        with pytest.raises(RateLimitedError):
            limiter.take("a")
    clock.now += 1.0
    limiter.take("a")
    for n in range(1000):
        limiter.take(f"caller-{n}")
    assert len(limiter) == 100


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.0.0.7:51234", "ipv4:10.0.0.7"),
        ("ipv6:[::1]:51234", "ipv6:[::1]"),
        ("unix:/run/clearance/peer.sock", "unix:/run/clearance/peer.sock"),
    ],
)
def test_the_port_is_not_part_of_who_calls(peer: str, address: str) -> None:
    assert caller_address(peer) == address


@pytest.fixture
def desk(desk_for: DeskFactory) -> Desk:
    world = RegistryWorld.create("JP")
    return desk_for(Verifier.synced(world).trust, world)


@pytest.fixture
def peer_api(desk: Desk) -> Iterator[RunningServer]:
    server = start_peer_api(
        PeerServicer(desk.gatekeeper, PeerSessions(desk.gatekeeper)),
        "127.0.0.1:0",
        tls=None,
        callers=CallerLimiter(rate=0.001, burst=5),
    )
    yield server
    server.stop(0.5)


def test_the_peer_port_refuses_a_flood_of_challenges_with_resource_exhausted(peer_api: RunningServer) -> None:
    channel = open_channel(peer_api.address, insecure=True)
    stub = node_pb2_grpc.PeerServiceStub(channel)
    try:
        for _ in range(5):
            assert stub.PeerChallenge(node_pb2.PeerChallengeRequest(), timeout=5).nonce
        with pytest.raises(grpc.RpcError) as refused:
            stub.PeerChallenge(node_pb2.PeerChallengeRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as refused:
            stub.OpenSession(node_pb2.OpenSessionRequest(facility_presentation="x"), timeout=5)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        channel.close()
