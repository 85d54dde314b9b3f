"""The node process (``clearance node run``): sync in the background, serve the APIs, stop cleanly.

:meth:`NodeAgent.open` assembles a node from its directory: configuration,
clock, store (the trust store is rebuilt from it), decision log, key and
facility credential, the :class:`~node.gatekeeper.Gatekeeper`, and a
:class:`~node.sync.Syncer` for the registry. :meth:`NodeAgent.start` serves
the local API (and the peer API when configured) and starts syncing;
decisions are served from the store at once, before the registry is
reached. SIGTERM and SIGINT stop the sync, let in-flight calls finish, and
close the store and the log.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from clearance.errors import StorageError
from clearance.keys import atomic_write, read_private_key
from clearance.tls import TlsFiles
from clearance.verify import MemoryNonceStore
from node import config as files
from node.clock import Clock, UnsafeFileClock, system_clock
from node.config import LOCAL_ADDR, PEER_ADDR, NodeConfig, check_private_files, read_secret
from node.decision_log import DecisionLog
from node.facility import FacilityIdentity
from node.gatekeeper import Gatekeeper
from node.peers import PeerSessions
from node.server import RunningServer, start_local_api, start_peer_api
from node.servicers import NodeServicer, PeerServicer
from node.state import TrustedState
from node.status import NodeStatus, describe
from node.store import NodeStore
from node.sync import INITIAL_BACKOFF, Syncer, UpdateApplier

log = logging.getLogger("clearance.node")

NONCE_TTL = 300
LOCK_NAME = "node.lock"
REGISTRY_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
)
"""As every client channel of ours (keepalive so a dead stream is noticed; documents up to their caps)."""


def lock_directory(config: NodeConfig) -> int:
    """Hold ``DIR/node.lock`` for this process's lifetime: one node per directory.

    Raises:
        StorageError: another node process runs from this directory.
    """
    path = config.path(LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StorageError(f"another node is running from {config.directory} (it holds {path})") from None
    return fd


def node_clock(config: NodeConfig) -> Clock:
    """The system clock, or the unsafe file clock when the configuration and environment both ask.

    Raises:
        InvalidArgumentError: ``unsafe_clock_file`` set without ``CLEARANCE_ALLOW_UNSAFE_CLOCK=1``.
    """
    path = config.clock_path
    return system_clock if path is None else UnsafeFileClock(path)


GRPC_JITTER = 0.2
"""gRPC spreads its reconnection backoff by this fraction either way; the cap leaves room for it."""


def channel_options(max_backoff: float) -> list[tuple[str, int]]:
    """gRPC channel settings that keep the channel's reconnection within the node's backoff.

    gRPC reconnects a broken channel on a schedule of its own (1 s doubling by 1.6 up
    to 120 s by default) and fails calls at once in between: the node's shorter
    backoff would retry into a channel still waiting. The channel starts at
    :data:`INITIAL_BACKOFF` and never waits more than ``max_backoff``, its own
    jitter included; a connection attempt may take up to ``max_backoff`` (at least
    1 s, at most gRPC's usual 20 s).
    """
    cap_ms = max(1, int(max_backoff * 1000 / (1 + GRPC_JITTER)))
    return [
        ("grpc.initial_reconnect_backoff_ms", min(int(INITIAL_BACKOFF * 1000), cap_ms)),
        ("grpc.max_reconnect_backoff_ms", cap_ms),
        ("grpc.min_reconnect_backoff_ms", min(max(1000, int(max_backoff * 1000)), 20_000)),
    ]


def registry_channel(config: NodeConfig) -> grpc.Channel:
    """A channel to the registry's publication API (public methods: no bearer token).

    Its reconnection backoff follows the node's ``max_backoff`` (:func:`channel_options`).
    """
    ca_path = config.path(files.REGISTRY_CA_NAME)
    options = [*REGISTRY_CHANNEL_OPTIONS, *channel_options(config.max_backoff)]
    if config.registry_insecure:
        return grpc.insecure_channel(config.registry, options=options)
    ca = ca_path.read_bytes() if ca_path.exists() else None
    return grpc.secure_channel(
        config.registry, grpc.ssl_channel_credentials(root_certificates=ca), options=options
    )


def open_trust(config: NodeConfig, *, repair: bool) -> tuple[NodeStore, TrustedState]:
    """The node's store and its trust state rebuilt from it.

    Raises:
        StorageError: the store is missing, unreadable, or pins another root than node.toml.
    """
    path = config.path(files.STORE_NAME)
    if not path.exists():
        raise StorageError(f"{path} does not exist; was the node enrolled (clearance node init)?")
    store = NodeStore(path)
    root = store.pinned_root()
    if root.thumbprint != config.root_fingerprint:
        store.close()
        raise StorageError(f"{path} pins another root than node.toml's root_fingerprint")
    return store, TrustedState(store.rebuild(root, repair=repair))


def facility_credential(config: NodeConfig) -> str | None:
    path = config.path(files.FACILITY_NAME)
    return read_secret(path) if path.exists() else None


@dataclass
class NodeAgent:
    config: NodeConfig
    clock: Clock
    store: NodeStore
    state: TrustedState
    decisions: DecisionLog
    gatekeeper: Gatekeeper
    syncer: Syncer
    token: str
    channel: grpc.Channel
    lock: int
    stop_event: threading.Event = field(default_factory=threading.Event)
    servers: list[RunningServer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def open(cls, directory: Path, *, clock: Clock | None = None) -> NodeAgent:
        """Assemble the node in ``directory`` (nothing is served yet).

        Raises:
            InvalidArgumentError: a bad node.toml (the key is named).
            StorageError: missing or unreadable files, a directory or private file that others
                may read, or a store that pins another root.
        """
        config = NodeConfig.load(directory)
        check_private_files(config.directory)
        clock = clock or node_clock(config)
        lock = lock_directory(config)
        token = read_secret(config.path(files.TOKEN_NAME))
        key = read_private_key(config.path(files.KEY_NAME))
        store, state = open_trust(config, repair=True)
        decisions = DecisionLog(config.path(files.DECISIONS_NAME))
        nonces = MemoryNonceStore(ttl=NONCE_TTL)
        policy = config.policy
        identity = FacilityIdentity(
            key=key,
            credential=facility_credential(config),
            audience=config.audience,
            trust=lambda: state.current,
            nonces=nonces,
            policy=policy,
            clock=clock,
        )
        gatekeeper = Gatekeeper(
            state,
            audience=config.audience,
            nonces=nonces,
            nonce_ttl=NONCE_TTL,
            policy=policy,
            clock=clock,
            facility=identity,
            decisions=decisions,
            host=(config.jurisdiction, config.organization_id),
            verify_threads=config.threads_for_verify,
        )
        channel = registry_channel(config)
        syncer = Syncer(
            UpdateApplier(state, store, clock),
            state,
            store,
            channel,
            clock=clock,
            endpoint=config.registry,
            poll_interval=config.poll_interval,
            max_backoff=config.max_backoff,
        )
        return cls(config, clock, store, state, decisions, gatekeeper, syncer, token, channel, lock)

    def status(self) -> NodeStatus:
        return describe(
            self.state.current, self.syncer.status, self.store.problems(), self.config.policy, self.clock()
        )

    def start(self) -> None:
        """Serve the APIs and start syncing; returns at once.

        Raises:
            InvalidArgumentError: an address cannot be bound.
        """
        local = start_local_api(NodeServicer(self.gatekeeper, self.status), self.config.listen, self.token)
        self.servers.append(local)
        _write_address(self.config.path(LOCAL_ADDR), local.address)
        if self.config.peer_listen:
            tls = None if self.config.peer_insecure else TlsFiles.in_dir(self.config.path(files.TLS_DIR))
            peer = start_peer_api(
                PeerServicer(self.gatekeeper, PeerSessions(self.gatekeeper)), self.config.peer_listen, tls=tls
            )
            self.servers.append(peer)
            _write_address(self.config.path(PEER_ADDR), peer.address)
        sync = threading.Thread(target=self.syncer.run, args=(self.stop_event,), name="sync", daemon=True)
        sync.start()
        self.threads.append(sync)
        log.info(
            json.dumps(
                {
                    "event": "serving",
                    "node": self.config.node_id,
                    "local_api": local.address,
                    "peer_api": self.servers[1].address if len(self.servers) > 1 else None,
                    "registry": self.config.registry,
                }
            )
        )

    def stop(self, grace: float = 5.0) -> None:
        """Stop syncing, drain the APIs for ``grace`` seconds, close the files."""
        self.stop_event.set()
        for server in self.servers:
            server.stop(grace)
        for thread in self.threads:
            thread.join(timeout=grace + 2)
        self.channel.close()
        self.gatekeeper.close()
        for name in (LOCAL_ADDR, PEER_ADDR):
            self.config.path(name).unlink(missing_ok=True)
        self.decisions.close()
        self.store.close()
        os.close(self.lock)

    def run_forever(self, grace: float = 5.0) -> None:
        """Start, block until SIGTERM or SIGINT, then stop gracefully."""
        done = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info(json.dumps({"event": "stopping", "signal": signum}))
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not done.wait(1.0):
            pass
        self.stop(grace)
        log.info(json.dumps({"event": "stopped"}))


def _write_address(path: Path, address: str) -> None:
    atomic_write(path, (address + "\n").encode(), mode=0o600)
