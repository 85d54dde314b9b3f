"""``clearance bench propagation``: from a revocation at the registry until every node denies it.

Setup (not timed): a registry in this process, served on loopback
(plaintext, embedded SQLite), prepared as ``bench registry`` prepares its
own (an organization, an adjudicator, favorable assessments), with as many
credentials bulk-issued as there will be revocations; then ``nodes`` node sync
clients spread over ``processes`` worker processes. Each client is a real
node's sync: its own gRPC connection and ``Watch`` stream, its own SQLite
store, :class:`~node.state.TrustedState` and
:class:`~node.sync.UpdateApplier`, so every pushed delta is signature-checked
by the trust core and written to disk before it counts, exactly as in
``clearance node run``. A client has synced when it holds the full list.

Measured: the credentials are revoked one at a time. For each, the clock
starts just before ``RevokeCredential`` is called (so the figure includes
the call, the commit and the push) and stops when the *last* node's trust
store reports the credential's index as revoked; the next revocation waits
for that. Bytes: every push message each node receives during the
revocations (deltas, the registry's freshness deltas and heartbeats
included), divided by nodes and revocations. For comparison, the size of
the registry's full Status List Token (mostly empty here, so it compresses
well) and of a realistic 10-million-entry list (1% revoked at random) are
reported: that is what each node would download per revocation without
deltas.

Workers report times from ``time.monotonic()``, which on Linux is one
system-wide clock, so times from several processes compare.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import queue
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.errors import TransportError

TARGET_P99_SECONDS = 1.0
TARGET_BYTES = 10_000
SETUP_TIMEOUT = 120.0
ROUND_TIMEOUT = 30.0


@dataclass(frozen=True)
class PropagationResult:
    nodes: int
    processes: int
    revocations: int
    p50_seconds: float
    p99_seconds: float
    max_seconds: float
    bytes_per_node_per_revocation: float
    full_list_token_bytes: int
    status_list_entries: int
    ten_million_list_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "processes": self.processes,
            "revocations": self.revocations,
            "p50_seconds": round(self.p50_seconds, 4),
            "p99_seconds": round(self.p99_seconds, 4),
            "max_seconds": round(self.max_seconds, 4),
            "bytes_per_node_per_revocation": round(self.bytes_per_node_per_revocation, 1),
            "full_list_token_bytes": self.full_list_token_bytes,
            "status_list_entries": self.status_list_entries,
            "ten_million_list_bytes": self.ten_million_list_bytes,
            "targets": {"p99_seconds": TARGET_P99_SECONDS, "bytes_per_node_per_revocation": TARGET_BYTES},
        }


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def ten_million_list_bytes(revoked_fraction: float = 0.01) -> int:
    """The size of the ``lst`` of a 10,000,000-entry list with ``revoked_fraction`` revoked at random:
    what a node would download if every revocation sent the full list."""
    import random

    from clearance.statuslist import StatusList

    entries = 10_000_000
    status_list = StatusList(2, entries)
    for index in random.Random(7).sample(range(entries), int(entries * revoked_fraction)):
        status_list.set(index, 1)
    return len(json.dumps(status_list.encode(level=6)))


# -- the worker processes: many nodes' sync clients each ---------------------------


def _worker(
    endpoint: str,
    root_jwk: str,
    node_ids: list[int],
    directory: str,
    targets: list[tuple[str, int]],
    commands: Any,
    events: Any,
) -> None:
    """Run the sync clients of ``node_ids`` until told to stop; report what they apply."""
    from clearance.channel import open_channel
    from clearance.statuslist import Status
    from clearance.trust import TrustStore
    from node.state import TrustedState
    from node.store import NodeStore
    from node.sync import Applied, Syncer, UpdateApplier

    stop = threading.Event()
    clients: list[tuple[Syncer, NodeStore, Any, threading.Thread]] = []
    received = {n: 0 for n in node_ids}
    lock = threading.Lock()

    def make(number: int) -> None:
        store = NodeStore(Path(directory) / f"node-{number}.sqlite3")
        store.set_meta("root_jwk", root_jwk)
        state = TrustedState(store.rebuild(store.pinned_root()))
        pending = dict(enumerate(targets))
        ready = [False]

        def on_applied(applied: Applied, trust: TrustStore) -> None:
            now = time.monotonic()
            if not ready[0] and trust.status_lists:
                ready[0] = True
                events.put(("ready", number, now))
            for key, (uri, index) in list(pending.items()):
                held = trust.status_lists.get(uri)
                if held is not None and held.status_of(index) == Status.REVOKED:
                    del pending[key]
                    events.put(("revoked", number, key, now))

        def on_message(_kind: str, size: int) -> None:
            with lock:
                received[number] += size

        channel = open_channel(endpoint, insecure=True, own_connection=True)
        syncer = Syncer(
            UpdateApplier(state, store, lambda: int(time.time())),
            state,
            store,
            channel,
            clock=lambda: int(time.time()),
            endpoint=endpoint,
            max_backoff=1,
            on_applied=on_applied,
            on_message=on_message,
        )
        thread = threading.Thread(target=syncer.run, args=(stop,), name=f"node-{number}", daemon=True)
        clients.append((syncer, store, channel, thread))
        thread.start()

    for number in node_ids:
        make(number)
    marks = dict(received)
    while True:
        command = commands.get()
        if command == "mark":
            with lock:
                marks = dict(received)
            events.put(("marked", node_ids[0], 0.0))
        elif command == "report":
            with lock:
                events.put(("bytes", node_ids[0], {n: received[n] - marks[n] for n in node_ids}))
        else:
            break
    stop.set()
    for _syncer, store, channel, thread in clients:
        channel.close()
        thread.join(timeout=5)
        store.close()


# -- the registry and the run -------------------------------------------------------


def _prepare_registry(directory: Path, count: int) -> tuple[Any, Any, list[tuple[str, str, int]]]:
    """A registry served on loopback with ``count`` valid credentials: (running, admin channel, credentials).

    The organization, adjudicator and favorable assessments are ``bench registry``'s.
    """
    from clearance.keys import SigningKey
    from clearance.v1 import registry_pb2 as pb
    from clearance.v1 import registry_pb2_grpc as rpc
    from cli.bench_registry import _prepare
    from registry.api import server
    from registry.setup import init_registry

    ctx, admin = init_registry(directory, jurisdiction="JP")
    running = server.start(ctx, "127.0.0.1:0", insecure=True, max_workers=count + 512)
    _connect, admin_channel, assessment_ids = _prepare(f"127.0.0.1:{running.port}", admin)
    holder = json.dumps(SigningKey.generate().public.jwk)
    issued = rpc.CredentialServiceStub(admin_channel).BulkIssueCredentials(
        pb.BulkIssueCredentialsRequest(
            requests=[
                pb.IssueCredentialRequest(
                    assessment_id=assessment_ids[n % len(assessment_ids)], holder_jwk=holder
                )
                for n in range(count)
            ]
        ),
        timeout=120,
    )
    credentials = [
        (r.credential.id, r.credential.status_list_uri, int(r.credential.status_index))
        for r in issued.results
    ]
    return running, admin_channel, credentials


def _reports_revocation(key: int, event: tuple[Any, ...]) -> bool:
    return bool(event[0] == "revoked" and event[2] == key)


def _collect(events: Any, want: int, deadline: float, counts: Callable[[tuple[Any, ...]], bool]) -> list[Any]:
    """Read events until ``want`` of them satisfy ``counts``; return every event read.

    Raises:
        TransportError: the deadline passed first.
    """
    seen: list[Any] = []
    got = 0
    while got < want:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError(f"only {got} of {want} expected reports from the nodes came in time")
        try:
            event = events.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        seen.append(event)
        got += counts(event)
    return seen


def run_propagation_benchmark(
    *, nodes: int = 100, revocations: int | None = None, processes: int = 2
) -> PropagationResult:
    """Run the benchmark; return the figures.

    Raises:
        TransportError: nodes did not sync or did not apply a revocation in time.
    """
    from clearance.statuslist import parse_status_list_token
    from clearance.v1 import registry_pb2 as pb
    from clearance.v1 import registry_pb2_grpc as rpc

    revocations = revocations or nodes
    processes = max(1, min(processes, nodes))
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as scratch:
        base = Path(scratch)
        running, admin_channel, credentials = _prepare_registry(base / "registry", revocations)
        workers: list[Any] = []
        context = multiprocessing.get_context("spawn")
        events = context.Queue()
        commands = [context.Queue() for _ in range(processes)]
        try:
            root = running.ctx.keys.root
            assert root is not None
            targets = [(uri, index) for _id, uri, index in credentials]
            for number in range(processes):
                ids = list(range(number, nodes, processes))
                process = context.Process(
                    target=_worker,
                    args=(
                        f"127.0.0.1:{running.port}",
                        json.dumps(root.public.jwk),
                        ids,
                        str(base),
                        targets,
                        commands[number],
                        events,
                    ),
                    daemon=True,
                )
                process.start()
                workers.append(process)
            _collect(events, nodes, time.monotonic() + SETUP_TIMEOUT, lambda e: e[0] == "ready")
            for command in commands:
                command.put("mark")
            _collect(events, processes, time.monotonic() + SETUP_TIMEOUT, lambda e: e[0] == "marked")
            stub = rpc.CredentialServiceStub(admin_channel)
            latencies: list[float] = []
            for key, (credential_id, _uri, _index) in enumerate(credentials):
                started = time.monotonic()
                stub.RevokeCredential(
                    pb.RevokeCredentialRequest(id=credential_id, reason="bench"), timeout=30
                )
                reports = _collect(
                    events,
                    nodes,
                    time.monotonic() + ROUND_TIMEOUT,
                    functools.partial(_reports_revocation, key),
                )
                latencies.append(max(e[3] for e in reports if _reports_revocation(key, e)) - started)
            for command in commands:
                command.put("report")
            totals = _collect(events, processes, time.monotonic() + SETUP_TIMEOUT, lambda e: e[0] == "bytes")
            received = sum(sum(e[2].values()) for e in totals if e[0] == "bytes")
            full = rpc.PublicationServiceStub(admin_channel).GetStatusList(
                pb.GetStatusListRequest(uri=credentials[0][1]), timeout=30
            )
            full_bytes = pb.WatchResponse(status_list=full.token).ByteSize()
            entries = parse_status_list_token(full.token).status_list.size
        finally:
            for command in commands:
                command.put("stop")
            for process in workers:
                process.join(timeout=15)
                if process.is_alive():
                    process.kill()
            admin_channel.close()
            running.stop(1.0)
    return PropagationResult(
        nodes=nodes,
        processes=processes,
        revocations=len(latencies),
        p50_seconds=statistics.median(latencies),
        p99_seconds=percentile(latencies, 0.99),
        max_seconds=max(latencies),
        bytes_per_node_per_revocation=received / nodes / len(latencies),
        full_list_token_bytes=full_bytes,
        status_list_entries=entries,
        ten_million_list_bytes=ten_million_list_bytes(),
    )
