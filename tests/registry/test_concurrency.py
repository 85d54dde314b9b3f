"""Several registry processes on one database, many clients at once: allocations stay safe.

Stateless replicas are how the registry scales (DESIGN.md): every status
index, list sequence number and audit position is allocated in the database.
Here three server processes share one database (and one registry directory)
while client threads issue and revoke through all of them at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Connection, create_engine, event, text

from clearance.access import TokenSource
from clearance.channel import open_channel
from clearance.keys import SigningKey
from clearance.statusdelta import parse_status_delta
from clearance.statuslist import Status, parse_status_list_token
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from registry.api import server
from registry.context import RegistryContext
from registry.setup import StaffCredential, init_registry
from registry.store.db import normalize_url
from tests.registry.conftest import DAY, YEAR, Client, FakeClock

pytestmark = [pytest.mark.database, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SERVE = """
import sys
from pathlib import Path
from registry.api import server

running = server.start(server.open_context(Path(sys.argv[1])), "127.0.0.1:0", insecure=True, freshness_check=0.5)
print(running.port, flush=True)
sys.stdin.read()  # serve until the test closes our stdin
running.stop(grace=1)
"""
PROCESSES = 3
THREADS = 12
ROUNDS = 8
SHARED_KEYS = 4


@dataclass
class Replica:
    process: subprocess.Popen[str]
    port: int
    log: Path


def start_replica(directory: Path, number: int) -> Replica:
    log = directory.parent / f"replica-{number}.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=REPO,
        )
    stdout = process.stdout
    assert stdout is not None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stdout.readline()))
    reader.start()
    reader.join(timeout=60)
    if not line or not line[0].strip().isdigit():
        process.kill()
        process.communicate(timeout=10)
        pytest.fail(f"registry process did not start: {log.read_text()}")
    return Replica(process, int(line[0]), log)


@dataclass
class Replicas:
    """Registry processes serving one registry directory and database."""

    admin: StaffCredential
    servers: list[Replica]

    def stop(self) -> list[str]:
        """Stop every process; what each wrote to its standard error."""
        for replica in self.servers:
            if replica.process.stdin is not None and not replica.process.stdin.closed:
                replica.process.stdin.close()
        for replica in self.servers:
            try:
                replica.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
            if replica.process.stdout is not None:
                replica.process.stdout.close()
        return [replica.log.read_text() for replica in self.servers]


@pytest.fixture
def replicas(tmp_path: Path, database_url: str) -> Iterator[Replicas]:
    """One registry initialized on the test database, served by several processes.

    Its status lists count as stale after a second, so every process also
    republishes them (empty deltas) while the test changes them.
    """
    directory = tmp_path / "registry"
    ctx, admin = init_registry(
        directory, jurisdiction="JP", database_url=database_url, status_freshness_interval=1
    )
    ctx.close()
    with ThreadPoolExecutor(PROCESSES) as pool:
        started = list(pool.map(lambda n: start_replica(directory, n), range(PROCESSES)))
    running = Replicas(admin, started)
    try:
        yield running
    finally:
        running.stop()


def client(port: int, key: SigningKey, principal: str, audience: str) -> Client:
    tokens = TokenSource(key, principal=principal, audience=audience)
    return Client(open_channel(f"127.0.0.1:{port}", insecure=True, token=tokens))


def test_replicas_allocate_indices_sequences_and_audit_positions_without_collisions(
    replicas: Replicas, database_url: str
) -> None:
    first_admin, servers = replicas.admin, replicas.servers
    audience = first_admin.audience
    admin = client(servers[0].port, first_admin.key, first_admin.principal, audience)
    adjudicator_key = SigningKey.generate()
    adjudicator_id = admin.staff.CreateStaff(
        pb.CreateStaffRequest(
            name="Adjudicator",
            role=common.ROLE_ADJUDICATOR,
            public_jwk=json.dumps(adjudicator_key.public.jwk),
        )
    ).staff.id
    through = [client(s.port, adjudicator_key, adjudicator_id, audience) for s in servers]
    investigator_key = SigningKey.generate()
    investigator_id = admin.staff.CreateStaff(
        pb.CreateStaffRequest(
            name="Investigator",
            role=common.ROLE_INVESTIGATOR,
            public_jwk=json.dumps(investigator_key.public.jwk),
        )
    ).staff.id
    investigator = client(servers[0].port, investigator_key, investigator_id, audience)
    org = admin.organizations.CreateOrganization(
        pb.CreateOrganizationRequest(name="Example KK", kind=common.ORGANIZATION_KIND_COMPANY, country="JP")
    ).organization
    admin.organizations.GrantFacilityClearance(
        pb.GrantFacilityClearanceRequest(
            organization_id=org.id,
            level="SECRET",
            categories=["cyber-threat"],
            valid_until=Timestamp(seconds=int(time.time()) + YEAR),
        )
    )
    person = admin.people.EnrollPerson(
        pb.EnrollPersonRequest(
            organization_id=org.id,
            personal_data=pb.PersonalData(
                given_name="Hanako", family_name="Yamada", birthdate="1988-04-01", nationality="JP"
            ),
        )
    ).person
    assessments = investigator.assessments
    assessment = assessments.OpenAssessment(
        pb.OpenAssessmentRequest(person_id=person.id, level="SECRET", categories=["cyber-threat"])
    ).assessment
    assessments.RecordConsent(pb.RecordConsentRequest(assessment_id=assessment.id, evidence="signed form"))
    for item in common.AssessmentItem.values()[1:]:
        assessments.RecordFinding(
            pb.RecordFindingRequest(
                assessment_id=assessment.id,
                item=item,
                outcome=common.FINDING_OUTCOME_NO_CONCERN,
                summary="ok",
            )
        )
    through[0].assessments.DecideAssessment(
        pb.DecideAssessmentRequest(
            assessment_id=assessment.id, decision=common.DECISION_FAVORABLE, reasons=["ok"]
        )
    )
    holder_jwk = json.dumps(SigningKey.generate().public.jwk)
    events_before = admin.audit.VerifyAuditChain(pb.VerifyAuditChainRequest()).events_checked

    def issue(via: Client, key: str) -> pb.CredentialRecord:
        return via.credentials.IssueCredential(
            pb.IssueCredentialRequest(assessment_id=assessment.id, holder_jwk=holder_jwk, idempotency_key=key)
        ).credential

    def work(worker: int) -> tuple[dict[str, set[str]], list[str]]:
        issued: dict[str, set[str]] = defaultdict(set)
        revoked: list[str] = []
        for round_ in range(ROUNDS):
            via = through[(worker + round_) % len(through)]
            own = issue(via, f"w{worker}-r{round_}")
            issued[f"w{worker}-r{round_}"].add(own.id)
            shared = f"shared-{round_ % SHARED_KEYS}"  # every worker asks for these, through every replica
            issued[shared].add(issue(via, shared).id)
            if round_ % 2 == 0:
                via.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=own.id, reason="rotation"))
                revoked.append(own.id)
        return issued, revoked

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))

    by_key: dict[str, set[str]] = defaultdict(set)
    for issued, _ in results:
        for key, ids in issued.items():
            by_key[key] |= ids
    revoked = [credential for _, revocations in results for credential in revocations]
    assert all(len(ids) == 1 for ids in by_key.values()), (
        "one idempotency key, one credential, on every replica"
    )

    engine = create_engine(normalize_url(database_url))
    try:
        with engine.connect() as db:
            rows = db.execute(text("SELECT id, status_list_id, status_index, state FROM credentials")).all()
            keys = db.execute(text("SELECT key, result_id FROM idempotency")).all()
            lists = db.execute(text("SELECT id, uri, seq FROM status_lists")).all()
            changes = db.execute(
                text("SELECT list_id, seq, token FROM status_changes ORDER BY list_id, seq")
            ).all()
    finally:
        engine.dispose()

    assert {r.id for r in rows} == {i for ids in by_key.values() for i in ids}
    assert len({(r.status_list_id, r.status_index) for r in rows}) == len(rows), (
        "every status index is distinct"
    )
    assert sorted((k.key, k.result_id) for k in keys) == sorted((key, *ids) for key, ids in by_key.items()), (
        "each idempotency key recorded once, naming the one credential it produced"
    )
    assert {r.id for r in rows if r.state == "revoked"} == set(revoked)

    published: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for change in changes:
        delta = parse_status_delta(change.token)
        published[change.list_id].append((delta.base_seq, delta.seq))
        assert delta.seq == change.seq
    for list_row in lists:
        sequence = published[list_row.id]
        assert [seq for _, seq in sequence] == list(range(1, list_row.seq + 1)), (
            "no gaps in a list's sequence"
        )
        assert all(base == seq - 1 for base, seq in sequence), "each delta builds on the one before"
    revoked_indices = {(r.status_list_id, r.status_index) for r in rows if r.state == "revoked"}
    delta_revocations = [
        (change.list_id, index)
        for change in changes
        for index, status in parse_status_delta(change.token).updates
        if status == Status.REVOKED
    ]
    assert sorted(delta_revocations) == sorted(revoked_indices), "each revocation published exactly once"
    for list_row in lists:
        token = admin.publication.GetStatusList(pb.GetStatusListRequest(uri=list_row.uri)).token
        full = parse_status_list_token(token)
        assert full.seq == list_row.seq
        for list_id, index in revoked_indices:
            if list_id == list_row.id:
                assert full.status_of(index) == Status.REVOKED

    report = admin.audit.VerifyAuditChain(pb.VerifyAuditChainRequest())
    assert report.intact, report.problem
    events = admin.audit.ListAuditEvents(
        pb.ListAuditEventsRequest(after_sequence=events_before, limit=1000)
    ).events
    actions = Counter(e.action for e in events)
    assert actions == {"credential.issue": len(rows), "credential.revoke": len(revoked)}, (
        "one event per change"
    )


class Rendezvous:
    """Holds each process's statement until every process has reached it (PostgreSQL).

    Makes a race certain rather than likely: every replica has read what it
    read before any of them goes on. SQLite serializes writing transactions
    whole, so there the race cannot happen and nobody waits.
    """

    def __init__(self, parties: int, matches: Callable[[str], bool]) -> None:
        self._barrier = threading.Barrier(parties, timeout=20)
        self._matches = matches
        self._passed: set[int] = set()

    def __call__(
        self, conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        engine = id(conn.engine)
        if engine in self._passed or not self._matches(" ".join(statement.split()).upper()):
            return
        self._passed.add(engine)
        self._barrier.wait()


RACES = {
    "the trust bundle": (4 * DAY, lambda s: s.startswith("INSERT INTO TRUST_BUNDLES")),
    "a status list": (301, lambda s: s.startswith("SELECT STATUS_LISTS.") and s.endswith("FOR UPDATE")),
}


@pytest.mark.parametrize("race", list(RACES))
def test_replicas_starting_together_after_downtime_all_start(
    tmp_path: Path, database_url: str, race: str
) -> None:
    """Each replica renews what went stale while the registry was down; none may fail for it."""
    downtime, matches = RACES[race]
    clock = FakeClock()
    directory = tmp_path / "registry"
    init_registry(directory, jurisdiction="JP", database_url=database_url, clock=clock)[0].close()
    clock.advance(downtime)
    contexts = [server.open_context(directory, clock=clock) for _ in range(PROCESSES)]
    if contexts[0].db.dialect != "sqlite":
        rendezvous = Rendezvous(PROCESSES, matches)
        for ctx in contexts:
            event.listen(ctx.db.engine, "before_cursor_execute", rendezvous)

    def start(ctx: RegistryContext) -> server.RunningRegistry:
        return server.start(ctx, "127.0.0.1:0", insecure=True, freshness_check=3600)

    with ThreadPoolExecutor(PROCESSES) as pool:
        outcomes = [pool.submit(start, ctx) for ctx in contexts]
    started = [o.result() for o in outcomes if o.exception() is None]
    for running in started:
        running.stop(grace=0.5)
    for ctx in contexts[len(started) :]:
        ctx.close()

    assert [str(o.exception()) for o in outcomes if o.exception() is not None] == []
    try:  # the replicas are stopped; this reads through a fresh pool, closed right after
        with contexts[0].db.engine.connect() as db:
            changes = db.execute(text("SELECT seq FROM status_changes ORDER BY seq")).scalars().all()
            versions = db.execute(text("SELECT version FROM trust_bundles ORDER BY version")).scalars().all()
    finally:
        contexts[0].db.dispose()
    assert list(changes) == list(range(1, len(changes) + 1))
    assert list(versions) == list(range(1, len(versions) + 1))
