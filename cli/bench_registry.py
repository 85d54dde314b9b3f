"""``clearance bench registry``: issuance through the gRPC API, and republishing a 10M-entry status list.

The registry runs as its own process (``clearance registry serve``) on
loopback, on the embedded SQLite database or the PostgreSQL URL given; the
load comes from this process over real gRPC:

* **single issuance**: many client threads call ``IssueCredential`` for a
  fixed time; we report the sustained rate and the p50/p99 latency;
* **bulk issuance**: ``BulkIssueCredentials`` in batches of 1,000;
* **status list republish**: a 10,000,000-entry list with 1% revoked (made
  through the store's own functions), built from its stored chunks,
  compressed and signed (what the registry does when a full list is requested
  after changes); we report the time and the sizes.

Setup (organizations, people, favorable assessments) is not timed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearance.errors import TransportError

if TYPE_CHECKING:
    import grpc

    from clearance.client import RegistryClient

PEOPLE = 40
PROCESSES = int(os.environ.get("CLEARANCE_BENCH_PROCESSES", "1"))
"""Registry replica processes sharing the port: stateless replicas are how the registry uses every core."""
THREADS = int(os.environ.get("CLEARANCE_BENCH_THREADS", "16"))
CHANNELS = 4
BULK_BATCH = 1000


@dataclass
class RegistryBench:
    single_issuance_per_second: float
    single_issuance_p50_ms: float
    single_issuance_p99_ms: float
    single_issued: int
    bulk_issuance_per_second: float
    bulk_issued: int
    status_list_entries: int
    status_list_revoked: int
    status_list_republish_ms: float
    status_list_bytes: int
    status_list_token_bytes: int
    database: str

    def to_json(self) -> dict[str, Any]:
        return {
            "single_issuance_per_second": round(self.single_issuance_per_second, 1),
            "single_issuance_p50_ms": round(self.single_issuance_p50_ms, 2),
            "single_issuance_p99_ms": round(self.single_issuance_p99_ms, 2),
            "single_issued": self.single_issued,
            "bulk_issuance_per_second": round(self.bulk_issuance_per_second, 1),
            "bulk_issued": self.bulk_issued,
            "status_list_entries": self.status_list_entries,
            "status_list_revoked": self.status_list_revoked,
            "status_list_republish_ms": round(self.status_list_republish_ms, 1),
            "status_list_bytes": self.status_list_bytes,
            "status_list_token_bytes": self.status_list_token_bytes,
            "database": self.database,
            "targets": {
                "single_issuance_per_second": 1000,
                "single_issuance_p99_ms": 50,
                "bulk_issuance_per_second": 10000,
                "status_list_republish_ms": 200,
                "status_list_bytes": 250_000,
            },
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _postgres_schema(url: str) -> Iterator[str]:
    """A scratch schema on the given PostgreSQL database, dropped afterwards."""
    import sqlalchemy

    from registry.store.db import normalize_url

    name = f"bench_{os.getpid()}_{random.randrange(1 << 30)}"
    engine = sqlalchemy.create_engine(normalize_url(url))
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    separator = "&" if "?" in url else "?"
    try:
        yield f"{normalize_url(url)}{separator}options=-csearch_path%3D{name}"
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        engine.dispose()


@contextmanager
def _registry(directory: Path, database_url: str | None) -> Iterator[tuple[str, Any]]:
    """A registry initialised in ``directory`` and served by a child process."""
    from registry.setup import init_registry

    port = _free_port()
    endpoint = f"127.0.0.1:{port}"
    ctx, admin = init_registry(directory, jurisdiction="JP", database_url=database_url, endpoint=endpoint)
    ctx.db.dispose()
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "registry",
        "serve",
        "--dir",
        str(directory),
        "--listen",
        endpoint,
        "--insecure",
        "--processes",
        str(PROCESSES),
    ]
    log = (directory / "serve.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())  # noqa: S603
    try:
        _wait_for(endpoint, process, directory / "serve.log")
        yield endpoint, admin
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_for(endpoint: str, process: subprocess.Popen[bytes], log: Path) -> None:
    from clearance.client import RegistryClient

    deadline = time.monotonic() + 30
    with RegistryClient.connect(endpoint, insecure=True, timeout=1) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise TransportError(f"registry exited: {log.read_text()[-500:]}")
            try:
                client.publication.jwks()
                return
            except TransportError:
                time.sleep(0.1)
    raise TransportError("registry did not become healthy within 30 s")


def prepare(endpoint: str, admin: Any) -> tuple[Callable[[], RegistryClient], RegistryClient, list[str]]:
    """An organization, an investigator and an adjudicator, and PEOPLE favorable assessments.

    Returns a way to open adjudicator clients, the administrator's client (bulk loading is
    theirs), and the assessment ids.
    """
    from clearance.access import TokenSource
    from clearance.client import RegistryClient
    from clearance.client.common import AssessmentItem, Decision, FindingOutcome, OrganizationKind, Role
    from clearance.client.personnel import PersonalData
    from clearance.keys import SigningKey

    administrator = RegistryClient.connect(
        endpoint,
        insecure=True,
        token=TokenSource(admin.key, principal=admin.principal, audience=admin.audience),
    )
    org = administrator.organizations.create(
        "Bench Heavy Industries", kind=OrganizationKind.COMPANY, country="JP"
    )
    administrator.organizations.grant_facility(
        org.id,
        level="TOP_SECRET",
        categories=["cyber-threat", "supply-chain"],
        valid_until=int(time.time()) + 5 * 365 * 86400,
    )
    tokens = {}
    for role in (Role.ADJUDICATOR, Role.INVESTIGATOR):
        key = SigningKey.generate()
        staff = administrator.staff.create(
            f"bench {role.value}", role=role, public_jwk=json.dumps(key.public.jwk)
        )
        tokens[role] = TokenSource(key, principal=staff.id, audience=admin.audience)

    def connect(role: Role = Role.ADJUDICATOR) -> RegistryClient:
        return RegistryClient.connect(endpoint, insecure=True, token=tokens[role], own_connection=True)

    ids = []
    with connect() as client, connect(Role.INVESTIGATOR) as investigator:
        for number in range(PEOPLE):
            person = administrator.personnel.enroll(
                org.id, PersonalData(f"Person{number}", "Bench", "1980-01-01", "JP")
            )
            assessment = investigator.assessments.open(person.id, level="SECRET", categories=["cyber-threat"])
            investigator.assessments.record_consent(assessment.id, evidence="bench")
            for item in AssessmentItem.all():
                investigator.assessments.record_finding(
                    assessment.id, item=item, outcome=FindingOutcome.NO_CONCERN, summary="bench"
                )
            client.assessments.decide(assessment.id, decision=Decision.FAVORABLE, reasons=["bench"])
            ids.append(assessment.id)
    return connect, administrator, ids


def _prepare(endpoint: str, admin: Any) -> tuple[Callable[[], grpc.Channel], grpc.Channel, list[str]]:
    """:func:`prepare` as channels, for ``bench propagation`` (which still calls raw stubs)."""
    connect, administrator, ids = prepare(endpoint, admin)
    return (lambda: connect().channel), administrator.channel, ids


def _holder_jwks(count: int) -> list[str]:
    from clearance.keys import SigningKey

    keys = [json.dumps(SigningKey.generate().public.jwk) for _ in range(min(count, 2000))]
    return [keys[i % len(keys)] for i in range(count)]


def _single(
    connect: Callable[[], RegistryClient], assessment_ids: list[str], seconds: float
) -> tuple[int, float, list[float]]:
    from clearance.client.credentials import IssueRequest

    clients = [connect() for _ in range(CHANNELS)]  # several clients: connections spread over the replicas
    holders = _holder_jwks(2000)
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    stop = time.monotonic() + seconds

    def worker(number: int) -> None:
        rng = random.Random(number)
        mine = latencies[number]
        client = clients[number % CHANNELS]
        try:
            while time.monotonic() < stop:
                request = IssueRequest(rng.choice(assessment_ids), rng.choice(holders))
                started = time.perf_counter()
                client.credentials.issue(request)
                mine.append(time.perf_counter() - started)
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for client in clients:
        client.close()
    if errors:
        raise errors[0]
    flat = [x for per in latencies for x in per]
    return len(flat), elapsed, flat


def _bulk(client: RegistryClient, assessment_ids: list[str], total: int) -> tuple[int, float]:
    from clearance.client.credentials import IssueRequest

    holders = _holder_jwks(total)
    batches = [
        [
            IssueRequest(assessment_ids[(start + i) % len(assessment_ids)], holders[start + i])
            for i in range(min(BULK_BATCH, total - start))
        ]
        for start in range(0, total, BULK_BATCH)
    ]
    issued = 0
    errors: list[BaseException] = []
    lock = threading.Lock()
    queue = list(batches)

    def worker() -> None:
        nonlocal issued
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    batch = queue.pop()
                results = client.credentials.bulk_issue(batch, timeout=120)
                with lock:
                    issued += len(results)
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if errors:
        raise errors[0]
    return issued, elapsed


def _republish(
    directory: Path, database_url: str | None, entries: int, revoked_fraction: float
) -> tuple[float, int, int, int]:
    """Build a list of ``entries`` with ``revoked_fraction`` revoked in the registry's own store; time a republish.

    The list is made and changed through the store's own functions (as revocations
    change it), batch by batch; only the full republish that follows is timed.
    """
    import zlib

    from clearance.statusdelta import MAX_UPDATES
    from clearance.statuslist import parse_status_list_token
    from registry.api.server import open_context
    from registry.store import statuslists

    ctx = open_context(directory, database_url=database_url)
    try:
        rng = random.Random(7)
        revoked = int(entries * revoked_fraction)
        with ctx.db.transaction() as session:
            row = statuslists.create_list(
                session, uri=ctx.config.status_list_uri(9999), size=entries, now=ctx.now()
            )
            list_id = row.id
        indices = rng.sample(range(entries), revoked)
        for start in range(0, revoked, MAX_UPDATES):
            with ctx.db.transaction() as session:
                statuslists.set_statuses(
                    session,
                    list_id,
                    [(index, 1) for index in indices[start : start + MAX_UPDATES]],
                    key=ctx.keys.issuing_key,
                    now=ctx.now(),
                    lifetime=ctx.config.status_list_lifetime,
                )
        started = time.perf_counter()
        with ctx.db.transaction() as session:
            publication = statuslists.full_token(
                session,
                list_id,
                key=ctx.keys.issuing_key,
                now=ctx.now(),
                lifetime=ctx.config.status_list_lifetime,
                ttl=300,
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        token = parse_status_list_token(publication.token)
        compressed = len(zlib.compress(token.status_list.to_bytes(), 6))
        return elapsed_ms, compressed, len(publication.token), revoked
    finally:
        ctx.db.dispose()


def run_registry_benchmark(
    *,
    database_url: str | None = None,
    seconds: float = 10.0,
    bulk_total: int = 20_000,
    list_entries: int = 10_000_000,
) -> RegistryBench:
    workdir = Path(tempfile.mkdtemp(prefix="clearance-bench-"))
    try:
        with _postgres_schema(database_url) if database_url else _nothing() as url:
            directory = workdir / "registry"
            with _registry(directory, url) as (endpoint, admin):
                connect, administrator, assessment_ids = prepare(endpoint, admin)
                count, elapsed, latencies = _single(connect, assessment_ids, seconds)
                bulk_issued, bulk_elapsed = _bulk(administrator, assessment_ids, bulk_total)
                administrator.close()
            republish_ms, list_bytes, token_bytes, revoked = _republish(directory, url, list_entries, 0.01)
        latencies.sort()
        return RegistryBench(
            single_issuance_per_second=count / elapsed,
            single_issuance_p50_ms=statistics.median(latencies) * 1000,
            single_issuance_p99_ms=latencies[int(len(latencies) * 0.99) - 1] * 1000,
            single_issued=count,
            bulk_issuance_per_second=bulk_issued / bulk_elapsed,
            bulk_issued=bulk_issued,
            status_list_entries=list_entries,
            status_list_revoked=revoked,
            status_list_republish_ms=republish_ms,
            status_list_bytes=list_bytes,
            status_list_token_bytes=token_bytes,
            database="postgresql" if database_url else "sqlite",
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
