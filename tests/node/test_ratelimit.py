"""The peer port's unauthenticated calls are limited per caller address and per network prefix."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from clearance.channel import open_channel
from clearance.errors import RateLimitedError
from clearance.v1 import node_pb2, node_pb2_grpc
from node.peers import PeerSessions
from node.ratelimit import Caller, CallerLimiter, caller_address, caller_prefix
from node.server import RunningServer, start_peer_api
from node.servicers import PeerServicer
from tests.factories import RegistryWorld, Verifier
from tests.node.conftest import Desk, DeskFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: float) -> CallerLimiter:
    settings: dict[str, float] = {
        "rate": 2.0,
        "burst": 3,
        "prefix_rate": 100.0,
        "prefix_burst": 100,
        **limits,
    }
    return CallerLimiter(clock=clock, **settings)  # type: ignore[arg-type]


def admit(limits: CallerLimiter, peer: str) -> None:
    caller = Caller.from_peer(peer)
    limits.admit(caller)
    limits.release(caller)


def test_a_caller_gets_its_burst_then_the_rate() -> None:
    clock = Clock()
    limits = limiter(clock)
    for _ in range(3):
        admit(limits, "ipv4:10.0.0.7:1000")
    with pytest.raises(RateLimitedError, match=r"ipv4:10\.0\.0\.7; try again in 0\.5s"):
        admit(limits, "ipv4:10.0.0.7:1001")
    clock.now += 0.5
    admit(limits, "ipv4:10.0.0.7:1002")
    with pytest.raises(RateLimitedError):
        admit(limits, "ipv4:10.0.0.7:1003")


def test_one_callers_flood_does_not_spend_anothers_bucket() -> None:
    limits = limiter(Clock(), rate=1.0, burst=2)
    admit(limits, "ipv4:10.0.0.7:1")
    admit(limits, "ipv4:10.0.0.7:2")
    with pytest.raises(RateLimitedError):
        admit(limits, "ipv4:10.0.0.7:3")
    admit(limits, "ipv4:10.0.0.8:1")


def test_the_addresses_of_one_prefix_share_its_bucket() -> None:
    clock = Clock()
    limits = limiter(clock, rate=100.0, burst=100, prefix_rate=1.0, prefix_burst=4)
    for host in range(4):
        admit(limits, f"ipv4:192.0.2.{host}:5000")
    with pytest.raises(RateLimitedError, match=r"ipv4:192\.0\.2\.0/24"):
        admit(limits, "ipv4:192.0.2.200:5000")
    for host in range(4):
        admit(limits, f"ipv6:[2001:db8:1:2::{host + 1:x}]:5000")
    with pytest.raises(RateLimitedError, match=r"ipv6:2001:db8:1:2::/64"):
        admit(limits, "ipv6:[2001:db8:1:2:ffff::1]:5000")
    admit(limits, "ipv4:192.0.3.1:5000")  # the next /24 has its own


def test_refused_calls_do_not_earn_credit_and_the_tables_stay_bounded() -> None:
    clock = Clock()
    limits = limiter(clock, rate=1.0, burst=1, max_keys=100)
    admit(limits, "ipv4:10.0.0.1:1")
    for _ in range(10):
        with pytest.raises(RateLimitedError):
            admit(limits, "ipv4:10.0.0.1:1")
    clock.now += 1.0
    admit(limits, "ipv4:10.0.0.1:1")
    for n in range(1000):
        admit(limits, f"ipv4:10.{1 + n // 256}.{n % 256}.1:1")
    assert limits.remembered() == (100, 100, 0)


def test_calls_in_flight_are_counted_until_released() -> None:
    limits = limiter(Clock(), rate=100.0, burst=100, in_flight=2, prefix_in_flight=3)
    first, second = Caller.from_peer("ipv4:10.0.0.1:1"), Caller.from_peer("ipv4:10.0.0.2:1")
    limits.admit(first)
    limits.admit(first)
    with pytest.raises(RateLimitedError, match=r"in flight from ipv4:10\.0\.0\.1"):
        limits.admit(first)
    limits.admit(second)
    with pytest.raises(RateLimitedError, match=r"in flight from ipv4:10\.0\.0\.0/24"):
        limits.admit(second)
    limits.release(first)
    limits.admit(second)
    for caller in (first, second, second):
        limits.release(caller)
    assert limits.remembered()[2] == 0


@pytest.mark.parametrize(
    ("peer", "address", "prefix"),
    [
        ("ipv4:10.0.0.7:51234", "ipv4:10.0.0.7", "ipv4:10.0.0.0/24"),
        ("ipv6:[::1]:51234", "ipv6:[::1]", "ipv6:::/64"),
        ("ipv6:[2001:db8:a:b:c:d:e:f]:443", "ipv6:[2001:db8:a:b:c:d:e:f]", "ipv6:2001:db8:a:b::/64"),
        ("ipv6:[::ffff:192.0.2.9]:443", "ipv6:[::ffff:192.0.2.9]", "ipv4:192.0.2.0/24"),
        ("unix:/run/clearance/peer.sock", "unix:/run/clearance/peer.sock", "unix:/run/clearance/peer.sock"),
    ],
)
def test_the_port_is_not_part_of_who_calls_and_the_prefix_is_their_network(
    peer: str, address: str, prefix: str
) -> None:
    assert caller_address(peer) == address
    assert caller_prefix(peer) == prefix


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
