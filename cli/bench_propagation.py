"""``clearance bench propagation``: from a revocation at the registry until every node holds it, at up to 10,000 nodes.

Setup (not timed): a registry initialized in a scratch directory (embedded
SQLite, the smallest status list herd privacy allows) and served by its own
process exactly as ``clearance registry serve`` runs it; an organization, an
adjudicator and favorable assessments as ``bench registry`` prepares them;
as many credentials bulk-issued as there will be revocations; ``nodes`` nodes
enrolled with one-time tokens, each with its own key.

The nodes are light but honest (:mod:`cli.bench_nodes`): many asyncio
tasks per worker process, each with its own connection, credential and trust
store, verifying every update as ``clearance node run`` does.

Measured, in one run:

* **staff calls**: the p99 of ``GetCredential`` with no stream connected, then
  with every node's stream connected and idle; their ratio.
* **revocations**, one at a time: the clock starts before ``RevokeCredential``
  and stops when the *last* node's trust store holds the credential's index
  as revoked (p50/p99 over revocations), and for each node when it holds it
  (p50/p99 over node x revocation).
* **bytes**: every push message each node received during the revocations
  (deltas, heartbeats, freshness deltas), per node per revocation.
* **the registry process**: its peak resident memory and its peak thread count.

Workers report times from ``time.monotonic()``, which on Linux is one
system-wide clock, so times from several processes compare.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import multiprocessing
import os
import queue
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clearance.errors import InvalidArgumentError, TransportError

TARGET_P99_SECONDS = 2.0
TARGET_BYTES = 1_000
TARGET_RSS_BYTES = 1 << 30
TARGET_STAFF_RATIO = 2.0
STAFF_CALLS = 300
SETTLE_SECONDS = 2.0
SETUP_TIMEOUT = 900.0
ROUND_TIMEOUT = 120.0
BENCH_LIST_SIZE = 131_072
"""The smallest status list herd privacy allows (a node holds one copy per list)."""


@dataclass(frozen=True)
class PropagationResult:
    nodes: int
    processes: int
    revocations: int
    p50_seconds: float
    p99_seconds: float
    max_seconds: float
    node_p50_seconds: float
    node_p99_seconds: float
    bytes_per_node_per_revocation: float
    connect_seconds: float
    registry_peak_rss_bytes: int
    registry_peak_threads: int
    registry_cpu_seconds_per_revocation: float
    load_average: float
    node_process_peak_rss_bytes: int
    refused_updates: int
    """Pushed documents a node's trust core refused (a node then reconnects from what it holds)."""
    """The largest peak resident memory of a process running simulated nodes."""
    """The machine's 1-minute load average at the end (other work on the machine slows every figure)."""
    staff_call_idle_p99_seconds: float
    staff_call_connected_p99_seconds: float
    full_list_token_bytes: int
    status_list_entries: int
    ten_million_list_bytes: int

    @property
    def staff_call_ratio(self) -> float:
        return self.staff_call_connected_p99_seconds / self.staff_call_idle_p99_seconds

    def to_json(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()
        }
        figures["staff_call_ratio"] = round(self.staff_call_ratio, 2)
        figures["targets"] = {
            "p99_seconds": TARGET_P99_SECONDS,
            "bytes_per_node_per_revocation": TARGET_BYTES,
            "registry_peak_rss_bytes": TARGET_RSS_BYTES,
            "staff_call_ratio": TARGET_STAFF_RATIO,
        }
        figures["met"] = {
            "p99_seconds": self.p99_seconds < TARGET_P99_SECONDS,
            "bytes_per_node_per_revocation": self.bytes_per_node_per_revocation < TARGET_BYTES,
            "registry_peak_rss_bytes": self.registry_peak_rss_bytes < TARGET_RSS_BYTES,
            "staff_call_ratio": self.staff_call_ratio <= TARGET_STAFF_RATIO,
        }
        return figures


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def ten_million_list_bytes(revoked_fraction: float = 0.01) -> int:
    """The size of the ``lst`` of a 10,000,000-entry list with ``revoked_fraction`` revoked at random:
    what a node would download if every revocation sent the full list."""
    from clearance.statuslist import StatusList

    entries = 10_000_000
    status_list = StatusList(2, entries)
    for index in random.Random(7).sample(range(entries), int(entries * revoked_fraction)):
        status_list.set(index, 1)
    return len(json.dumps(status_list.encode(level=6)))


# -- the registry, its population, and the run --------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class _Sampler:
    """Samples the registry process's resident memory and thread count until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.threads = max(self.threads, _proc_status(self.pid, "Threads"))

    def finish(self) -> tuple[int, int]:
        """(peak resident bytes, peak threads)."""
        self._stop.set()
        self._thread.join()
        return _proc_status(self.pid, "VmHWM") * 1024, self.threads


def _serve(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``clearance registry serve`` in its own process; returns when it answers health checks."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    endpoint = f"127.0.0.1:{_free_port()}"
    command = ["registry", "serve", "--dir", str(directory), "--listen", endpoint, "--insecure"]
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "cli.main", *command],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(endpoint) as channel:
        while True:
            try:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                return process, endpoint
            except grpc.RpcError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    raise TransportError("the registry process did not start") from None
                time.sleep(0.1)


def _enroll(endpoint: str, admin_channel: Any, organization_id: str, count: int) -> list[tuple[str, bytes]]:
    """``count`` nodes enrolled with one-time tokens: (node id, private key PEM)."""
    import grpc

    from clearance.keys import SigningKey
    from clearance.v1 import registry_pb2 as pb
    from clearance.v1 import registry_pb2_grpc as rpc

    public = grpc.insecure_channel(endpoint)
    organizations = rpc.OrganizationServiceStub(admin_channel)
    enrollment = rpc.EnrollmentServiceStub(public)

    def one(number: int) -> tuple[str, bytes]:
        key = SigningKey.generate()
        token = organizations.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(organization_id=organization_id), timeout=60
        ).token
        node = enrollment.EnrollNode(
            pb.EnrollNodeRequest(
                token=token, name=f"bench node {number}", public_jwk=json.dumps(key.public.jwk)
            ),
            timeout=60,
        ).node
        return node.id, key.to_pem()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        enrolled = list(pool.map(one, range(count)))
    public.close()
    return enrolled


def _staff_p99(call: Callable[[], Any], count: int = STAFF_CALLS) -> float:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return percentile(latencies, 0.99)


def _collect(
    events: Any,
    want: int,
    deadline: float,
    counts: Callable[[tuple[Any, ...]], int],
    workers: list[Any] | None = None,
) -> list[Any]:
    """Read events until ``counts`` adds up to ``want``; return every event read.

    Raises:
        TransportError: the deadline passed first, or a worker process died.
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
            dead = [p.exitcode for p in workers or () if not p.is_alive()]
            if dead:
                raise TransportError(f"a node worker process died (exit codes {dead})") from None
            continue
        seen.append(event)
        got += counts(event)
    return seen


def run_propagation_benchmark(
    *,
    nodes: int = 100,
    revocations: int | None = None,
    processes: int | None = None,
    cross_border: bool = False,
) -> PropagationResult:
    """Run the benchmark; return the figures.

    Raises:
        InvalidArgumentError: ``cross_border`` (federation by deltas is not built yet).
        TransportError: nodes did not sync or did not apply a revocation in time.
    """
    if cross_border:
        raise InvalidArgumentError("--cross-border", "cross-border propagation is not measured yet")
    from clearance.keys import SigningKey
    from clearance.statuslist import parse_status_list_token
    from clearance.v1 import registry_pb2 as pb
    from clearance.v1 import registry_pb2_grpc as rpc
    from cli.bench_nodes import run_nodes
    from cli.bench_registry import _prepare
    from registry.setup import init_registry

    revocations = revocations or min(nodes, 20)
    processes = max(1, min(processes or 4, nodes))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 2 * nodes + 4096)), hard))
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as scratch:
        directory = Path(scratch) / "registry"
        ctx, admin = init_registry(directory, jurisdiction="JP", status_list_size=BENCH_LIST_SIZE)
        root = ctx.keys.root
        assert root is not None
        root_jwk, audience = json.dumps(root.public.jwk), ctx.config.issuer
        ctx.close()
        registry, endpoint = _serve(directory)
        workers: list[Any] = []
        context = multiprocessing.get_context("spawn")
        events = context.Queue()
        commands = [context.Queue() for _ in range(processes)]
        try:
            sampler = _Sampler(registry.pid)
            connect, admin_channel, assessment_ids = _prepare(endpoint, admin)
            holder = json.dumps(SigningKey.generate().public.jwk)
            issued = rpc.CredentialServiceStub(admin_channel).BulkIssueCredentials(
                pb.BulkIssueCredentialsRequest(
                    requests=[
                        pb.IssueCredentialRequest(
                            assessment_id=assessment_ids[n % len(assessment_ids)], holder_jwk=holder
                        )
                        for n in range(revocations)
                    ]
                ),
                timeout=300,
            )
            credentials = [
                (r.credential.id, r.credential.status_list_uri, int(r.credential.status_index))
                for r in issued.results
            ]
            organization = (
                rpc.OrganizationServiceStub(admin_channel)
                .ListOrganizations(pb.ListOrganizationsRequest(), timeout=60)
                .organizations[0]
            )
            enrolled = _enroll(endpoint, admin_channel, organization.id, nodes)
            adjudicator = rpc.CredentialServiceStub(connect())
            probe = credentials[0][0]

            def staff_call() -> None:
                adjudicator.GetCredential(pb.GetCredentialRequest(id=probe), timeout=30)

            staff_call()
            idle_p99 = _staff_p99(staff_call)
            targets = [(uri, index) for _id, uri, index in credentials]
            started = time.monotonic()
            for number in range(processes):
                process = context.Process(
                    target=run_nodes,
                    args=(
                        endpoint,
                        root_jwk,
                        audience,
                        nodes,
                        enrolled[number::processes],
                        targets,
                        commands[number],
                        events,
                    ),
                    daemon=True,
                )
                process.start()
                workers.append(process)
            ready = _collect(
                events,
                nodes,
                time.monotonic() + SETUP_TIMEOUT,
                lambda e: e[1] if e[0] == "ready" else 0,
                workers,
            )
            connect_seconds = max(e[2] for e in ready if e[0] == "ready") - started
            time.sleep(SETTLE_SECONDS)  # the connection storm's tail is not what is compared
            connected_p99 = _staff_p99(staff_call)
            for command in commands:
                command.put("mark")
            _collect(
                events,
                nodes,
                time.monotonic() + SETUP_TIMEOUT,
                lambda e: e[1] if e[0] == "marked" else 0,
                workers,
            )
            stub = rpc.CredentialServiceStub(admin_channel)
            cpu_before = _cpu_seconds(registry.pid)
            every: list[float] = []
            each: list[float] = []
            for key, (credential_id, _uri, _index) in enumerate(credentials):
                started = time.monotonic()
                stub.RevokeCredential(
                    pb.RevokeCredentialRequest(id=credential_id, reason="bench"), timeout=60
                )
                reports = _collect(
                    events,
                    processes,
                    time.monotonic() + ROUND_TIMEOUT,
                    lambda e, key=key: int(e[0] == "revoked" and e[1] == key),  # type: ignore[misc]
                    workers,
                )
                times = [t - started for e in reports if e[0] == "revoked" and e[1] == key for t in e[2]]
                every.append(max(times))
                each.extend(times)
            registry_cpu = (_cpu_seconds(registry.pid) - cpu_before) / len(every)
            for command in commands:
                command.put("report")
            totals = _collect(
                events, processes, time.monotonic() + SETUP_TIMEOUT, lambda e: int(e[0] == "bytes"), workers
            )
            received = sum(e[1] for e in totals if e[0] == "bytes")
            worker_rss = max(e[2] for e in totals if e[0] == "bytes")
            refused = sum(e[3] for e in totals if e[0] == "bytes")
            full = rpc.PublicationServiceStub(admin_channel).GetStatusList(
                pb.GetStatusListRequest(uri=credentials[0][1]), timeout=60
            )
            full_bytes = pb.WatchResponse(status_list=full.token).ByteSize()
            entries = parse_status_list_token(full.token).status_list.size
            peak_rss, peak_threads = sampler.finish()
        finally:
            for command in commands:
                command.put("stop")
            for process in workers:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
            registry.send_signal(signal.SIGTERM)
            try:
                registry.wait(timeout=30)
            except subprocess.TimeoutExpired:
                registry.kill()
                registry.wait()
    return PropagationResult(
        nodes=nodes,
        processes=processes,
        revocations=len(every),
        p50_seconds=statistics.median(every),
        p99_seconds=percentile(every, 0.99),
        max_seconds=max(every),
        node_p50_seconds=statistics.median(each),
        node_p99_seconds=percentile(each, 0.99),
        bytes_per_node_per_revocation=received / nodes / len(every),
        connect_seconds=connect_seconds,
        registry_peak_rss_bytes=peak_rss,
        registry_peak_threads=peak_threads,
        registry_cpu_seconds_per_revocation=registry_cpu,
        load_average=os.getloadavg()[0],
        node_process_peak_rss_bytes=worker_rss,
        refused_updates=refused,
        staff_call_idle_p99_seconds=idle_p99,
        staff_call_connected_p99_seconds=connected_p99,
        full_list_token_bytes=full_bytes,
        status_list_entries=entries,
        ten_million_list_bytes=ten_million_list_bytes(),
    )


def render(
    figures: dict[str, Any], table: Callable[[list[tuple[str, str]]], str], word: Callable[[str, bool], str]
) -> str:
    """The human form of :meth:`PropagationResult.to_json` (``table`` and ``word`` come from the CLI's output)."""
    met = figures["met"]

    def verdict(name: str) -> str:
        return word("met" if met[name] else "not met", met[name])

    rows = [
        (
            "nodes",
            f"{figures['nodes']:,} in {figures['processes']} processes, connected in {figures['connect_seconds']:.1f} s",
        ),
        ("revocations", f"{figures['revocations']} (machine load average {figures['load_average']:.1f})"),
        (
            "revocation to every node holding it",
            f"p50 {figures['p50_seconds'] * 1000:,.0f} ms, p99 {figures['p99_seconds'] * 1000:,.0f} ms, "
            f"max {figures['max_seconds'] * 1000:,.0f} ms (target p99 < 2 s: {verdict('p99_seconds')})",
        ),
        (
            "revocation to each node holding it",
            f"p50 {figures['node_p50_seconds'] * 1000:,.0f} ms, p99 {figures['node_p99_seconds'] * 1000:,.0f} ms",
        ),
        (
            "bytes per node per revocation",
            f"{figures['bytes_per_node_per_revocation']:,.0f} (target < 1,000: {verdict('bytes_per_node_per_revocation')})",
        ),
        (
            "registry process",
            f"peak RSS {figures['registry_peak_rss_bytes'] / 2**20:,.0f} MiB (target < 1 GiB: "
            f"{verdict('registry_peak_rss_bytes')}), peak {figures['registry_peak_threads']} threads, "
            f"{figures['registry_cpu_seconds_per_revocation'] * 1000:,.0f} ms CPU per revocation",
        ),
        (
            "staff call p99 (GetCredential)",
            f"{figures['staff_call_idle_p99_seconds'] * 1000:,.1f} ms idle, "
            f"{figures['staff_call_connected_p99_seconds'] * 1000:,.1f} ms with every stream connected: "
            f"x{figures['staff_call_ratio']:.2f} (target <= 2: {verdict('staff_call_ratio')})",
        ),
        (
            "full status list instead",
            f"{figures['full_list_token_bytes']:,} bytes for this list ({figures['status_list_entries']:,} entries), "
            f"{figures['ten_million_list_bytes']:,} bytes for 10,000,000 entries with 1% revoked",
        ),
    ]
    return table(rows)
