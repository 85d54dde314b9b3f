"""Admission before a worker is spent: stalled calls, the request deadline, the admission cap, the token.

A stalled call sends its headers and never its request (:mod:`tests.node.rawgrpc`,
from another loopback address than the honest caller): exactly what held
every thread of the old thread-pool servers.
"""

from __future__ import annotations

import grpc
import pytest

from clearance.channel import open_channel
from clearance.v1 import node_pb2, node_pb2_grpc
from node.peers import PeerSessions
from node.ratelimit import CallerLimiter
from node.server import (
    LOCAL_LIMITS,
    PEER_LIMITS,
    RunningServer,
    ServiceLimits,
    start_local_api,
    start_peer_api,
)
from node.servicers import NodeServicer, PeerServicer
from node.status import describe
from node.sync import SyncStatus
from tests.factories import RegistryWorld, Verifier
from tests.node.conftest import AUDIENCE, Desk, DeskFactory
from tests.node.harness import wait_until
from tests.node.rawgrpc import RawGrpcConnection

TOKEN = "local-token-for-tests"
CHALLENGE = "/clearance.v1.PeerService/PeerChallenge"
LOCAL_CHALLENGE = "/clearance.v1.NodeService/Challenge"


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def stall(
    server: RunningServer,
    path: str,
    count: int,
    *,
    source: str = "127.0.2.1",
    metadata: tuple[tuple[str, str], ...] = (),
) -> tuple[RawGrpcConnection, list[int]]:
    """``count`` calls from ``source`` that send their headers and never their request."""
    connection = RawGrpcConnection(*host_port(server.address), source=source)
    return connection, [connection.start(path, metadata) for _ in range(count)]


@pytest.fixture
def desk(desk_for: DeskFactory) -> Desk:
    world = RegistryWorld.create("JP")
    return desk_for(Verifier.synced(world).trust, world)


def peer_api(desk: Desk, limits: ServiceLimits, callers: CallerLimiter | None = None) -> RunningServer:
    return start_peer_api(
        PeerServicer(desk.gatekeeper, PeerSessions(desk.gatekeeper)),
        "127.0.0.1:0",
        tls=None,
        limits=limits,
        callers=callers,
    )


def local_api(desk: Desk, limits: ServiceLimits) -> RunningServer:
    gatekeeper = desk.gatekeeper

    def status() -> object:
        return describe(gatekeeper.state.current, SyncStatus(), [], gatekeeper.policy, desk.now)

    return start_local_api(NodeServicer(gatekeeper, status), "127.0.0.1:0", TOKEN, limits=limits)  # type: ignore[arg-type]


def test_stalled_peer_calls_hold_no_worker_and_an_honest_challenge_is_answered(desk: Desk) -> None:
    limits = ServiceLimits(**{**PEER_LIMITS.__dict__, "workers": 1, "request_timeout": 60.0})
    server = peer_api(desk, limits)
    channel = open_channel(server.address, insecure=True)
    attacker, _ = stall(server, CHALLENGE, 16)
    neighbour, _ = stall(server, CHALLENGE, 4, source="127.0.2.2")
    try:
        wait_until(lambda: server.counts.receiving == 20, 15, "the stalled calls did not reach the server")
        assert server.counts.working == 0  # none of them was handed to the (only) worker

        answer = node_pb2_grpc.PeerServiceStub(channel).PeerChallenge(
            node_pb2.PeerChallengeRequest(), timeout=10
        )

        assert answer.nonce
        assert answer.audience == AUDIENCE
        assert server.counts.receiving == 20
    finally:
        attacker.close()
        neighbour.close()
        channel.close()
        server.stop(0.5)


def test_stalled_local_calls_with_the_token_do_not_starve_the_local_api(desk: Desk) -> None:
    limits = ServiceLimits(**{**LOCAL_LIMITS.__dict__, "workers": 1, "request_timeout": 60.0})
    server = local_api(desk, limits)
    channel = open_channel(server.address, insecure=True, token=lambda: TOKEN)
    stalled, _ = stall(server, LOCAL_CHALLENGE, 40, metadata=(("authorization", f"Bearer {TOKEN}"),))
    try:
        wait_until(lambda: server.counts.receiving == 40, 15, "the stalled calls did not reach the server")

        answer = node_pb2_grpc.NodeServiceStub(channel).Challenge(node_pb2.ChallengeRequest(), timeout=10)

        assert answer.nonce
        assert server.counts.working == 0
    finally:
        stalled.close()
        channel.close()
        server.stop(0.5)


def test_a_call_whose_request_does_not_arrive_in_time_is_cut_off(desk: Desk) -> None:
    limits = ServiceLimits(**{**PEER_LIMITS.__dict__, "request_timeout": 0.5})
    server = peer_api(desk, limits)
    stalled, streams = stall(server, CHALLENGE, 3)
    try:
        stalled.wait(*streams)

        assert {stalled.results[s].status for s in streams} == {grpc.StatusCode.DEADLINE_EXCEEDED.value[0]}
        assert "did not arrive within 0.5s" in stalled.results[streams[0]].details
        assert (server.counts.receiving, server.counts.working, server.counts.refused) == (0, 0, 3)
    finally:
        stalled.close()
        server.stop(0.5)


def test_calls_beyond_the_admission_cap_are_refused_at_once(desk: Desk) -> None:
    limits = ServiceLimits(**{**PEER_LIMITS.__dict__, "max_calls": 4, "request_timeout": 60.0})
    server = peer_api(desk, limits)
    channel = open_channel(server.address, insecure=True)
    stalled, _ = stall(server, CHALLENGE, 4)
    try:
        wait_until(lambda: server.counts.receiving == 4, 15, "the stalled calls did not reach the server")

        with pytest.raises(grpc.RpcError) as refused:
            node_pb2_grpc.PeerServiceStub(channel).PeerChallenge(node_pb2.PeerChallengeRequest(), timeout=10)

        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        stalled.close()
        channel.close()
        server.stop(0.5)


def test_one_address_and_one_prefix_hold_only_so_many_calls_in_flight(desk: Desk) -> None:
    limits = ServiceLimits(**{**PEER_LIMITS.__dict__, "request_timeout": 60.0})
    server = peer_api(desk, limits, CallerLimiter(in_flight=3, prefix_in_flight=5))
    channel = open_channel(server.address, insecure=True)
    first, _ = stall(server, CHALLENGE, 3, source="127.0.2.1")
    second, _ = stall(server, CHALLENGE, 2, source="127.0.2.2")
    try:
        wait_until(lambda: server.counts.receiving == 5, 15, "the stalled calls did not reach the server")

        same_address, _ = stall(server, CHALLENGE, 1, source="127.0.2.1")
        same_prefix, _ = stall(server, CHALLENGE, 1, source="127.0.2.3")
        answer = node_pb2_grpc.PeerServiceStub(channel).PeerChallenge(  # 127.0.0.1: another /24
            node_pb2.PeerChallengeRequest(), timeout=10
        )

        for refused in (same_address, same_prefix):
            result = refused.wait(*refused.results)
            assert result.status == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
            assert "in flight" in result.details
            refused.close()
        assert answer.nonce
    finally:
        first.close()
        second.close()
        channel.close()
        server.stop(0.5)


def test_an_anonymous_local_call_is_refused_from_its_headers(desk: Desk) -> None:
    server = local_api(desk, LOCAL_LIMITS)
    stalled, streams = stall(server, LOCAL_CHALLENGE, 1)  # no token, no request
    try:
        result = stalled.wait(*streams)

        assert result.status == grpc.StatusCode.UNAUTHENTICATED.value[0]
        assert server.counts.receiving == 0  # its request was never waited for
    finally:
        stalled.close()
        server.stop(0.5)


def test_a_call_carries_exactly_one_request(desk: Desk) -> None:
    server = peer_api(desk, PEER_LIMITS)
    channel = open_channel(server.address, insecure=True)
    try:
        call = channel.stream_unary(CHALLENGE, request_serializer=bytes, response_deserializer=bytes)
        with pytest.raises(grpc.RpcError) as two:
            call(iter([b"", b""]), timeout=10)
        with pytest.raises(grpc.RpcError) as none:
            call(iter([]), timeout=10)
    finally:
        channel.close()
        server.stop(0.5)

    assert two.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert none.value.code() is grpc.StatusCode.INVALID_ARGUMENT
