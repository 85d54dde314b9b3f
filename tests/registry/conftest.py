"""Factories for registry tests: a registry served over real gRPC on loopback, its staff and its people.

Every test talks to the registry the way its users do, through the generated
stubs over a channel carrying a signed bearer token; the database is read
directly only to check what the API cannot show (ciphertext at rest, rows
left behind by a failed transaction, a tampered audit log)::

    def test_a_revocation_is_published(registry):
        issued = registry.issue(registry.cleared_person().assessment.id)
        registry.adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued.id, reason="left"))
        assert registry.published_status(issued) == Status.REVOKED

The registry's clock is injected (:class:`FakeClock`); staff tokens are
signed with the same clock, so advancing it ten years ages everything alike.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import Row
from sqlalchemy.exc import OperationalError

from clearance.access import TokenSource
from clearance.channel import open_channel
from clearance.errors import DenialCode, PermissionDeniedError
from clearance.keys import SigningKey
from clearance.rpc import to_error
from clearance.statuslist import parse_status_list_token
from clearance.trust import TrustStore
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api import server
from registry.api.server import RunningRegistry
from registry.context import RegistryContext
from registry.setup import StaffCredential, init_registry
from tests.factories import NOW, Holder, Verifier, present_credential

DAY = 86_400
YEAR = 365 * DAY
CATEGORIES = ("cyber-threat", "joint-research")
ALL_ITEMS = tuple(v for v in common.AssessmentItem.values() if v != common.ASSESSMENT_ITEM_UNSPECIFIED)
"""The seven items of the law."""
STAFF_ROLES = {
    "administrator": common.ROLE_ADMINISTRATOR,
    "adjudicator": common.ROLE_ADJUDICATOR,
    "security_officer": common.ROLE_SECURITY_OFFICER,
    "oversight": common.ROLE_OVERSIGHT,
    "investigator": common.ROLE_INVESTIGATOR,
}
HEARTBEAT = 0.3
"""Seconds between Watch heartbeats in tests (15 in production)."""


class FakeClock:
    """The registry's clock: starts at a fixed instant and moves only when a test says so."""

    def __init__(self, start: int = NOW) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: int) -> int:
        with self._lock:
            self._now += seconds
            return self._now


class Client:
    """One caller of the registry: a channel (with or without a bearer token) and every service stub."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel

    @cached_property
    def organizations(self) -> rpc.OrganizationServiceStub:
        return rpc.OrganizationServiceStub(self.channel)

    @cached_property
    def staff(self) -> rpc.StaffServiceStub:
        return rpc.StaffServiceStub(self.channel)

    @cached_property
    def people(self) -> rpc.PersonnelServiceStub:
        return rpc.PersonnelServiceStub(self.channel)

    @cached_property
    def assessments(self) -> rpc.AssessmentServiceStub:
        return rpc.AssessmentServiceStub(self.channel)

    @cached_property
    def credentials(self) -> rpc.CredentialServiceStub:
        return rpc.CredentialServiceStub(self.channel)

    @cached_property
    def publication(self) -> rpc.PublicationServiceStub:
        return rpc.PublicationServiceStub(self.channel)

    @cached_property
    def enrollment(self) -> rpc.EnrollmentServiceStub:
        return rpc.EnrollmentServiceStub(self.channel)

    @cached_property
    def audit(self) -> rpc.AuditServiceStub:
        return rpc.AuditServiceStub(self.channel)

    @cached_property
    def federation(self) -> rpc.FederationServiceStub:
        return rpc.FederationServiceStub(self.channel)


class Principal(Client):
    """A staff member or an enrolled node: an id, a role, a key of its own, and a channel signing with it."""

    def __init__(
        self, channel: grpc.Channel, *, id: str, role: str, key: SigningKey, organization_id: str
    ) -> None:
        super().__init__(channel)
        self.id = id
        self.role = role
        self.key = key
        self.organization_id = organization_id


@dataclass(frozen=True)
class IssuedCredential:
    """What the holder receives: the registry's record, the SD-JWT, and the holder's wallet key."""

    record: pb.CredentialRecord
    sd_jwt: str
    holder: Holder

    @property
    def id(self) -> str:
        return self.record.id


@dataclass(frozen=True)
class ClearedPerson:
    """A person walked to a favorable assessment in a cleared organization."""

    organization: pb.Organization
    person: pb.Person
    assessment: pb.Assessment


class InjectedFailure:
    """Makes the registry's database fail once, at the first statement that starts with ``prefix``.

    The failure is the one a real database gives when it goes away mid-transaction
    (an OperationalError from the driver), raised through SQLAlchemy's own
    ``before_cursor_execute`` hook on the registry's engine.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.upper()
        self.fired: list[str] = []
        self._lock = threading.Lock()

    def __call__(
        self, conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        with self._lock:
            if self.fired or not " ".join(statement.split()).upper().startswith(self.prefix):
                return
            self.fired.append(statement)
        raise OperationalError(statement, parameters, ConnectionError("injected: the database went away"))


@dataclass
class Registry:
    """A registry under test, served on loopback, with factories for what tests need in it."""

    ctx: RegistryContext
    running: RunningRegistry
    clock: FakeClock
    directory: Path
    first_admin: StaffCredential
    _channels: list[grpc.Channel] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _stopped: bool = False

    @cached_property
    def admin(self) -> Principal:
        """The first administrator, whose key ``registry init`` made."""
        first = self.first_admin
        return self.principal(first.key, id=first.principal, role="administrator")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    @property
    def audience(self) -> str:
        return self.ctx.config.issuer

    def channel(self, token: Callable[[], str] | None = None) -> grpc.Channel:
        channel = open_channel(self.endpoint, insecure=True, token=token)
        self._channels.append(channel)
        return channel

    @cached_property
    def public(self) -> Client:
        """A caller without any credential (a CDN, a node before enrollment)."""
        return Client(self.channel())

    def principal(self, key: SigningKey, *, id: str, role: str, organization_id: str = "") -> Principal:
        tokens = TokenSource(key, principal=id, audience=self.audience, clock=self.clock)
        return Principal(self.channel(tokens), id=id, role=role, key=key, organization_id=organization_id)

    def unique(self, stem: str) -> str:
        return f"{stem} {next(self._names)}"

    # -- staff -----------------------------------------------------------------

    def new_staff(self, role: str, *, organization_id: str = "", name: str = "") -> Principal:
        """A staff member with a fresh key, registered by the administrator."""
        key = SigningKey.generate()
        staff = self.admin.staff.CreateStaff(
            pb.CreateStaffRequest(
                name=name or self.unique(role),
                role=STAFF_ROLES[role],
                organization_id=organization_id,
                public_jwk=json.dumps(key.public.jwk),
            )
        ).staff
        return self.principal(key, id=staff.id, role=role, organization_id=organization_id)

    @cached_property
    def adjudicator(self) -> Principal:
        return self.new_staff("adjudicator")

    @cached_property
    def second_adjudicator(self) -> Principal:
        """The adjudicator who approves the first one's Top Secret decisions."""
        return self.new_staff("adjudicator")

    @cached_property
    def investigator(self) -> Principal:
        """Records consent and findings; never decides."""
        return self.new_staff("investigator")

    @cached_property
    def oversight(self) -> Principal:
        return self.new_staff("oversight")

    def security_officer(self, organization_id: str) -> Principal:
        return self.new_staff("security_officer", organization_id=organization_id)

    def reassign(self, staff: Principal, role: str, *, organization_id: str = "") -> Principal:
        """The same staff account moved to ``role`` by the administrator, calling with its new key."""
        key = SigningKey.generate()
        self.admin.staff.ReassignStaff(
            pb.ReassignStaffRequest(
                id=staff.id,
                role=STAFF_ROLES[role],
                organization_id=organization_id,
                public_jwk=json.dumps(key.public.jwk),
            )
        )
        return self.principal(key, id=staff.id, role=role, organization_id=organization_id)

    def new_node(self, organization_id: str) -> Principal:
        """A node of ``organization_id``, enrolled with a one-time token."""
        token = self.admin.organizations.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(organization_id=organization_id)
        ).token
        key = SigningKey.generate()
        node = self.public.enrollment.EnrollNode(
            pb.EnrollNodeRequest(token=token, name=self.unique("node"), public_jwk=json.dumps(key.public.jwk))
        ).node
        return self.principal(key, id=node.id, role="node", organization_id=organization_id)

    # -- organizations and people ------------------------------------------------

    def new_organization(
        self,
        *,
        name: str = "",
        facility_level: str | None = "SECRET",
        categories: tuple[str, ...] = CATEGORIES,
        facility_valid_for: int = 5 * YEAR,
    ) -> pb.Organization:
        """An organization; with a facility clearance at ``facility_level`` unless it is None."""
        org = self.admin.organizations.CreateOrganization(
            pb.CreateOrganizationRequest(
                name=name or self.unique("Example KK"), kind=common.ORGANIZATION_KIND_COMPANY, country="JP"
            )
        ).organization
        if facility_level is None:
            return org
        return self.admin.organizations.GrantFacilityClearance(
            pb.GrantFacilityClearanceRequest(
                organization_id=org.id,
                level=facility_level,
                categories=list(categories),
                valid_until=Timestamp(
                    seconds=self.clock() + min(facility_valid_for, self.ctx.config.clearance_validity)
                ),
            )
        ).organization

    def enroll_person(
        self,
        organization_id: str,
        *,
        by: Client | None = None,
        given_name: str = "Hanako",
        family_name: str = "Yamada",
        idempotency_key: str = "",
    ) -> pb.Person:
        return (
            (by or self.admin)
            .people.EnrollPerson(
                pb.EnrollPersonRequest(
                    organization_id=organization_id,
                    personal_data=pb.PersonalData(
                        given_name=given_name,
                        family_name=family_name,
                        birthdate="1988-04-01",
                        nationality="JP",
                        family=[pb.FamilyMember(relation="spouse", name="Taro Yamada", nationality="JP")],
                    ),
                    idempotency_key=idempotency_key,
                )
            )
            .person
        )

    # -- the assessment --------------------------------------------------------

    def consented_assessment(
        self, person_id: str, *, level: str = "SECRET", categories: tuple[str, ...] = CATEGORIES
    ) -> pb.Assessment:
        """An assessment opened and consented to, with no findings yet."""
        assessments = self.investigator.assessments
        opened = assessments.OpenAssessment(
            pb.OpenAssessmentRequest(person_id=person_id, level=level, categories=list(categories))
        ).assessment
        return assessments.RecordConsent(
            pb.RecordConsentRequest(assessment_id=opened.id, evidence="signed consent form")
        ).assessment

    def record_findings(
        self,
        assessment_id: str,
        *,
        items: tuple[common.AssessmentItem.ValueType, ...] = ALL_ITEMS,
        outcome: common.FindingOutcome.ValueType = common.FINDING_OUTCOME_NO_CONCERN,
    ) -> pb.Assessment:
        assessment = pb.Assessment()
        for item in items:
            assessment = self.investigator.assessments.RecordFinding(
                pb.RecordFindingRequest(
                    assessment_id=assessment_id,
                    item=item,
                    outcome=outcome,
                    summary="checked against the records",
                )
            ).assessment
        return assessment

    def decided_assessment(
        self,
        person_id: str,
        *,
        decision: common.Decision.ValueType = common.DECISION_FAVORABLE,
        level: str = "SECRET",
        categories: tuple[str, ...] = CATEGORIES,
    ) -> pb.DecideAssessmentResponse:
        """An assessment walked through consent and the seven findings to ``decision``.

        An investigator records, the adjudicator decides; at the highest level the
        second adjudicator approves, so the decision is in effect either way.
        """
        assessment = self.consented_assessment(person_id, level=level, categories=categories)
        outcome = (
            common.FINDING_OUTCOME_NO_CONCERN
            if decision == common.DECISION_FAVORABLE
            else common.FINDING_OUTCOME_CONCERN
        )
        self.record_findings(assessment.id, outcome=outcome)
        decided = self.adjudicator.assessments.DecideAssessment(
            pb.DecideAssessmentRequest(
                assessment_id=assessment.id, decision=decision, reasons=["weighed all seven items"]
            )
        )
        if decided.assessment.state != common.ASSESSMENT_STATE_AWAITING_APPROVAL:
            return decided
        approved = self.second_adjudicator.assessments.ApproveDecision(
            pb.ApproveDecisionRequest(assessment_id=assessment.id, approve=True, comment="agreed")
        )
        return pb.DecideAssessmentResponse(assessment=approved.assessment, notice=approved.notice)

    def cleared_person(
        self,
        *,
        organization: pb.Organization | None = None,
        level: str = "SECRET",
        categories: tuple[str, ...] = CATEGORIES,
        given_name: str = "Hanako",
    ) -> ClearedPerson:
        """A person of a cleared organization with a favorable assessment."""
        organization = organization or self.new_organization()
        person = self.enroll_person(organization.id, given_name=given_name)
        decided = self.decided_assessment(person.id, level=level, categories=categories)
        return ClearedPerson(organization, person, decided.assessment)

    def issue(
        self,
        assessment_id: str,
        *,
        holder: Holder | None = None,
        idempotency_key: str = "",
        by: Client | None = None,
    ) -> IssuedCredential:
        holder = holder or Holder()
        response = (by or self.adjudicator).credentials.IssueCredential(
            pb.IssueCredentialRequest(
                assessment_id=assessment_id,
                holder_jwk=json.dumps(holder.key.public.jwk),
                idempotency_key=idempotency_key,
            )
        )
        return IssuedCredential(response.credential, response.sd_jwt, holder)

    def credential(self, credential_id: str) -> pb.CredentialRecord:
        return self.admin.credentials.GetCredential(pb.GetCredentialRequest(id=credential_id)).credential

    # -- what is published -----------------------------------------------------

    def published_status(self, issued: IssuedCredential | pb.CredentialRecord) -> int:
        """The status a verifier reads for a credential in the list the registry publishes now."""
        record = issued.record if isinstance(issued, IssuedCredential) else issued
        token = self.public.publication.GetStatusList(
            pb.GetStatusListRequest(uri=record.status_list_uri)
        ).token
        return parse_status_list_token(token).status_of(record.status_index)

    def verifier(self, *, audience: str = "node-a") -> Verifier:
        """A node's verifier synced from this registry's publication API, pinning its root."""
        assert self.ctx.keys.root is not None
        trust = TrustStore(self.ctx.keys.root.public)
        now = self.clock()
        bundle = trust.update_bundle(
            self.public.publication.GetTrustBundle(pb.GetTrustBundleRequest()).bundle, now
        )
        for location in bundle.status_lists:
            trust.update_status_list(
                self.public.publication.GetStatusList(pb.GetStatusListRequest(uri=location.uri)).token, now
            )
        return Verifier(trust, audience=audience)

    def present(self, issued: IssuedCredential, verifier: Verifier, *, disclose: tuple[str, ...] = ()) -> str:
        now = self.clock()
        return present_credential(
            issued.sd_jwt,
            issued.holder,
            nonce=verifier.challenge(now),
            audience=verifier.audience,
            disclose=disclose,
            issued_at=now,
        )

    # -- the audit log ---------------------------------------------------------

    def audit_events(self, *, after: int = 0) -> list[pb.AuditEvent]:
        events: list[pb.AuditEvent] = []
        while True:
            page = self.admin.audit.ListAuditEvents(
                pb.ListAuditEventsRequest(after_sequence=after, limit=1000)
            ).events
            events.extend(page)
            if len(page) < 1000:
                return events
            after = page[-1].sequence

    def chain(self) -> pb.VerifyAuditChainResponse:
        return self.admin.audit.VerifyAuditChain(pb.VerifyAuditChainRequest())

    # -- the database, seen from outside the API ------------------------------

    def sql(self, statement: str, **params: Any) -> list[Row[Any]]:
        """Run one statement straight on the registry's database (reads, and tampering)."""
        with self.ctx.db.engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result) if result.returns_rows else []

    def count(self, table: str, where: str = "", **params: Any) -> int:
        clause = f" WHERE {where}" if where else ""
        return int(self.sql(f"SELECT count(*) FROM {table}{clause}", **params)[0][0])  # noqa: S608

    @contextlib.contextmanager
    def database_fails_at(self, prefix: str) -> Iterator[InjectedFailure]:
        """The first statement starting with ``prefix`` (e.g. ``INSERT INTO audit_events``) fails."""
        failure = InjectedFailure(prefix)
        event.listen(self.ctx.db.engine, "before_cursor_execute", failure)
        try:
            yield failure
        finally:
            event.remove(self.ctx.db.engine, "before_cursor_execute", failure)
        assert failure.fired, f"no statement started with {prefix!r}: the failure was never injected"

    def stop(self) -> None:
        """Close every channel and stop the server (once; the fixture calls it again at teardown)."""
        if self._stopped:
            return
        self._stopped = True
        for channel in self._channels:
            channel.close()
        self.running.stop(grace=0.5)


RegistryFactory = Callable[..., Registry]


@pytest.fixture
def make_registry(tmp_path: Path, database_url: str) -> Iterator[RegistryFactory]:
    """Start registries on the database under test; each is stopped when the test ends.

    Keyword arguments are registry settings (``clearance_validity=...``); the
    database is the test's, so only one registry can be initialized per test.
    """
    started: list[Registry] = []

    def make(*, heartbeat: float = HEARTBEAT, start: int = NOW, **settings: Any) -> Registry:
        clock = FakeClock(start)
        directory = tmp_path / f"registry-{len(started) + 1}"
        ctx, admin = init_registry(
            directory, jurisdiction="JP", database_url=database_url, clock=clock, **settings
        )
        # The background freshness job would republish on its own when the clock
        # jumps; tests that want it call publication.ensure_fresh themselves.
        running = server.start(ctx, "127.0.0.1:0", insecure=True, heartbeat=heartbeat, freshness_check=3600)
        registry = Registry(ctx=ctx, running=running, clock=clock, directory=directory, first_admin=admin)
        started.append(registry)
        return registry

    yield make
    for registry in started:
        registry.stop()


@pytest.fixture
def registry(make_registry: RegistryFactory) -> Registry:
    """A registry for Japan, served on loopback, with its first administrator."""
    return make_registry()


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    """The error a call fails with (the test fails if it succeeds)."""
    try:
        result = call()
        if hasattr(result, "__next__"):  # a server stream fails on its first message
            next(result)
    except grpc.RpcError as exc:
        return exc
    pytest.fail(f"the call succeeded: {result}")


def fails_with(code: grpc.StatusCode, call: Callable[[], Any], *, mentioning: str = "") -> str:
    """Assert ``call`` fails with ``code`` (and a message mentioning ``mentioning``); return the message."""
    error = rpc_error(call)
    assert error.code() == code, f"expected {code.name}, got {error.code().name}: {error.details()}"
    details = error.details() or ""
    assert mentioning in details, f"{details!r} does not mention {mentioning!r}"
    return details


def denied_by(code: DenialCode, call: Callable[[], Any]) -> str:
    """Assert ``call`` is refused with PERMISSION_DENIED by the separation-of-duties rule ``code``.

    The code is read as clients read it, from the error details (never the message).
    """
    error = rpc_error(call)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, f"got {error.code().name}: {error.details()}"
    rebuilt = to_error(error)
    assert isinstance(rebuilt, PermissionDeniedError)
    assert rebuilt.code is code, f"refused with {rebuilt.code}, not {code}: {rebuilt}"
    return error.details() or ""


def refused_naming(field: str, call: Callable[[], Any]) -> str:
    """Assert ``call`` fails with INVALID_ARGUMENT whose message starts with the offending field."""
    details = fails_with(grpc.StatusCode.INVALID_ARGUMENT, call)
    assert details.startswith(f"{field}:"), f"{details!r} does not name the field {field!r}"
    return details
