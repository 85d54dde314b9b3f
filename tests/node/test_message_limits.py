"""Oversized requests are refused from their length prefix, before they are buffered: the node's memory shows it.

The node serves from a child process, so that its peak resident memory
(``VmHWM``) measures the node alone. Each hostile call claims a 79 MB
message and sends its body as fast as HTTP/2 flow control lets it
(:mod:`tests.node.rawgrpc`), up to a budget of 4 MiB: a server that buffers
before refusing takes all of it and answers nothing.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import pytest

from clearance.errors import RateLimitedError
from clearance.keys import SigningKey
from node.client import NodeClient
from node.decisions import Label
from node.peers import PeerSessions
from node.server import start_local_api, start_peer_api
from node.servicers import NodeServicer, PeerServicer
from node.status import describe
from node.sync import SyncStatus
from tests.factories import RegistryWorld, Verifier
from tests.node.conftest import make_desk
from tests.node.rawgrpc import RawGrpcConnection

TOKEN = "local-token-for-tests"
CLAIMED = 79 * 1000 * 1000
BUDGET = 4 * 1024 * 1024
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED.value[0]


def peak_memory() -> int:
    """This process's peak resident memory, in bytes (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def serve_node(connection: Connection) -> None:
    """Child process: a node's peer and local APIs over in-memory trust, answering ``peak`` until ``stop``."""
    world = RegistryWorld.create("JP")
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory(prefix="clearance-limits-") as scratch:
        desk = make_desk(
            Verifier.synced(world).trust,
            Path(scratch) / "decisions.sqlite3",
            facility=world.facility(key, org_id="org-a"),
            node_key=key,
        )
        gatekeeper = desk.gatekeeper
        peer = start_peer_api(PeerServicer(gatekeeper, PeerSessions(gatekeeper)), "127.0.0.1:0", tls=None)

        def status() -> Any:
            return describe(gatekeeper.state.current, SyncStatus(), [], gatekeeper.policy, desk.now)

        local = start_local_api(NodeServicer(gatekeeper, status), "127.0.0.1:0", TOKEN)
        connection.send((peer.address, local.address))
        while (command := connection.recv()) != "stop":
            assert command == "peak"
            connection.send(peak_memory())
        peer.stop(0.5)
        local.stop(0.5)
        gatekeeper.decisions.close()


class ChildNode:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=serve_node, args=(child,), daemon=True)
        self.process.start()
        if not self.connection.poll(60):
            raise AssertionError("the node did not start")
        self.peer, self.local = self.connection.recv()

    def peak(self) -> int:
        self.connection.send("peak")
        value: int = self.connection.recv()
        return value

    def close(self) -> None:
        self.connection.send("stop")
        self.process.join(timeout=20)
        if self.process.is_alive():
            self.process.kill()


@pytest.fixture(scope="module")
def child() -> Iterator[ChildNode]:
    node = ChildNode()
    yield node
    node.close()


def push(
    address: str, path: str, source: str, metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[int, int | None]:
    host, _, port = address.rpartition(":")
    with RawGrpcConnection(host, int(port), source=source) as connection:
        stream = connection.start(path, metadata)
        sent, result = connection.push_oversized(stream, CLAIMED, BUDGET)
        return sent, result.status


def test_sixteen_anonymous_79_mb_messages_are_refused_before_they_are_buffered(child: ChildNode) -> None:
    client = NodeClient(child.local, TOKEN)
    client.challenge()  # warm both servers up before the baseline
    client.close()
    before = child.peak()

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(
            pool.map(
                lambda n: push(child.peer, "/clearance.v1.PeerService/OpenSession", f"127.0.3.{n + 1}"),
                range(16),
            )
        )

    assert {status for _sent, status in outcomes} == {RESOURCE_EXHAUSTED}
    assert max(sent for sent, _status in outcomes) <= 128 * 1024  # the initial window, no more
    assert child.peak() - before < 32 * 1024 * 1024


def test_the_local_api_refuses_an_anonymous_large_message_from_its_headers(child: ChildNode) -> None:
    sent, status = push(child.local, "/clearance.v1.NodeService/Verify", "127.0.0.1")

    assert status == UNAUTHENTICATED
    assert sent <= 128 * 1024


def test_a_verify_batch_past_its_own_limit_is_refused_before_it_is_buffered(child: ChildNode) -> None:
    token = (("authorization", f"Bearer {TOKEN}"),)
    sent, status = push(child.local, "/clearance.v1.NodeService/Verify", "127.0.0.1", token)

    assert status == RESOURCE_EXHAUSTED
    assert sent <= 128 * 1024


def test_each_method_is_held_to_what_its_requests_need(child: ChildNode) -> None:
    client = NodeClient(child.local, TOKEN)
    try:
        with pytest.raises(RateLimitedError, match=f"Authorize requests are at most {192 * 1024} bytes"):
            client.authorize(Label("JP", "SECRET", "cyber-threat", ()), "x" * (200 * 1024))
        assert client.challenge().nonce
    finally:
        client.close()
