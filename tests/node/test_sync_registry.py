"""The sync client against a real registry server (in this process): push, resume, repair, poll."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from node.agent import open_trust, registry_channel
from node.config import NodeConfig
from node.state import TrustedState
from node.store import NodeStore
from node.sync import Applied, Syncer, UpdateApplier
from registry.store import statuslists
from tests.node.harness import RegistryHarness, SharedClock, init_node, wait_until

pytestmark = pytest.mark.database


@dataclass
class SyncClient:
    """A node's sync, without its APIs: store, trust state and syncer over the enrolled directory."""

    config: NodeConfig
    clock: SharedClock
    messages: list[tuple[str, int]] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    store: NodeStore | None = None
    state: TrustedState | None = None
    syncer: Syncer | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    channel: grpc.Channel | None = None

    def open(self) -> SyncClient:
        self.store, self.state = open_trust(self.config, repair=True)
        self.messages, self.applied = [], []
        self.channel = registry_channel(self.config)
        self.syncer = Syncer(
            UpdateApplier(self.state, self.store, self.clock),
            self.state,
            self.store,
            self.channel,
            clock=self.clock,
            max_backoff=1,
            on_message=lambda kind, size: self.messages.append((kind, size)),
            on_applied=lambda applied, _trust: self.applied.append(applied),
        )
        return self

    def run(self) -> SyncClient:
        assert self.syncer is not None
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.syncer.run, args=(self.stop_event,), daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None
        if self.channel is not None:
            self.channel.close()
        if self.store is not None:
            self.store.close()

    def seq(self) -> int:
        assert self.state is not None
        lists = self.state.current.status_lists
        return next(iter(lists.values())).seq if lists else -1

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _size in self.messages]

    def caught_up(self) -> bool:
        return "heartbeat" in self.kinds


@pytest.fixture
def client(tmp_path: Path, registry: RegistryHarness, clock: SharedClock) -> Iterator[SyncClient]:
    org = registry.organization("Example KK")
    result = init_node(tmp_path / "node", registry, registry.enrollment_token(org), clock=clock)
    assert result.exit_code == 0, result.stderr
    sync = SyncClient(NodeConfig.load(tmp_path / "node"), clock).open()
    try:
        yield sync
    finally:
        sync.close()


def changes(registry: RegistryHarness, after: int) -> list[str]:
    assert registry.ctx is not None
    with registry.ctx.db.transaction() as session:
        return [c.token for c in statuslists.changes_since(session, 1, after)]


def test_a_restarted_node_receives_only_what_it_lacks(registry: RegistryHarness, client: SyncClient) -> None:
    client.run()
    wait_until(client.caught_up, 10, "the first sync did not finish")
    assert "status_list" in client.kinds  # the first sync brings the full list
    assert "trust_bundle" not in client.kinds  # enrollment brought the bundle already
    client.close()
    org = registry.organization("Other KK")
    issued = registry.issue(org)
    registry.revoke(issued.credential_id)

    client.open().run()
    wait_until(client.caught_up, 10, "the second sync did not finish")

    before_heartbeat = client.kinds[: client.kinds.index("heartbeat")]
    assert set(before_heartbeat) == {"status_delta"}, before_heartbeat


def test_a_delta_that_does_not_build_on_the_held_list_brings_the_full_list(
    registry: RegistryHarness, client: SyncClient
) -> None:
    assert client.syncer is not None
    client.syncer.fill_gaps()
    held = client.seq()
    org = registry.organization("Other KK")
    first, second = registry.issue(org), registry.issue(org)
    registry.revoke(first.credential_id)
    registry.revoke(second.credential_id)
    latest = changes(registry, held)[-1]

    applied = client.syncer.receive("status_delta", latest)

    assert applied is not None
    assert applied.kind == "status_list"  # repaired by fetching the list in full
    assert client.seq() == held + len(changes(registry, held))
    assert client.store is not None
    assert client.store.problems() == []


def test_polling_brings_the_same_state_as_the_stream(registry: RegistryHarness, client: SyncClient) -> None:
    assert client.syncer is not None
    org = registry.organization("Other KK")
    issued = registry.issue(org)
    registry.revoke(issued.credential_id)

    client.syncer.poll_once()

    assert client.seq() == len(changes(registry, 0))
    assert client.syncer.status.last_sync == client.clock()


def test_pushed_updates_are_applied_as_they_are_committed(
    registry: RegistryHarness, client: SyncClient
) -> None:
    client.run()
    wait_until(client.caught_up, 10, "no first sync")
    org = registry.organization("Other KK")
    issued = registry.issue(org)
    seq = client.seq()

    registry.revoke(issued.credential_id)

    wait_until(lambda: client.seq() > seq, 10, "the revocation was not pushed")
    assert client.applied[-1].kind == "status_delta"
    kind, size = next(m for m in reversed(client.messages) if m[0] != "heartbeat")
    assert kind == "status_delta"
    assert size < 2_000  # a signed delta, not the list


def test_a_node_enrolls_and_syncs_over_tls(tmp_path: Path, clock: SharedClock, database_url: str) -> None:
    registry = RegistryHarness(tmp_path / "tls-registry", clock, database_url, tls=True).start()
    try:
        org = registry.organization("Example KK")
        result = init_node(tmp_path / "node", registry, registry.enrollment_token(org), clock=clock)
        assert result.exit_code == 0, result.stderr
        config = NodeConfig.load(tmp_path / "node")
        assert not config.registry_insecure
        assert (tmp_path / "node" / "registry-ca.pem").read_bytes() == registry.ca_path.read_bytes()
        sync = SyncClient(config, clock).open()
        try:
            assert sync.syncer is not None
            sync.syncer.poll_once()
            assert sync.seq() >= 0
        finally:
            sync.close()
    finally:
        registry.stop()


class Doorman:
    """Holds a stopped registry's port: accepts each connection attempt, counts it, hangs up."""

    def __init__(self, port: int) -> None:
        self.attempts = 0
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen(16)
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.attempts += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


def test_a_node_reconnects_within_its_backoff_after_the_registry_restarts(
    registry: RegistryHarness, client: SyncClient
) -> None:
    assert client.config.max_backoff == 1
    client.run()
    wait_until(client.caught_up, 10, "no first sync")
    registry.stop()
    doorman = Doorman(registry.port)
    try:
        # Five failed attempts: left to gRPC's own schedule (1 s, x1.6, +-20%), the next
        # one would be at least 5 s away; the node's backoff says at most 1 s.
        wait_until(lambda: doorman.attempts >= 5, 30, "the node did not keep trying")
    finally:
        doorman.close()
    assert not client.syncer.status.connected  # type: ignore[union-attr]
    messages = len(client.messages)

    registry.start()  # the same port

    wait_until(lambda: client.syncer.status.connected, 3 * client.config.max_backoff, "not back in time")  # type: ignore[union-attr]
    wait_until(lambda: len(client.messages) > messages, 10, "the stream did not resume")


def test_a_restarted_caught_up_node_is_connected_before_the_first_heartbeat(
    tmp_path: Path, clock: SharedClock, database_url: str
) -> None:
    registry = RegistryHarness(tmp_path / "quiet-registry", clock, database_url, heartbeat=120.0).start()
    try:
        org = registry.organization("Example KK")
        result = init_node(tmp_path / "node", registry, registry.enrollment_token(org), clock=clock)
        assert result.exit_code == 0, result.stderr
        sync = SyncClient(NodeConfig.load(tmp_path / "node"), clock).open().run()
        try:
            wait_until(lambda: sync.seq() >= 0, 10, "the first sync brought no list")
            sync.close()

            sync.open().run()  # a restart: nothing is missing, so nothing is sent for 120 s

            wait_until(lambda: sync.syncer.status.connected, 5, "reported not connected")  # type: ignore[union-attr]
            assert sync.messages == []
        finally:
            sync.close()
    finally:
        registry.stop()
