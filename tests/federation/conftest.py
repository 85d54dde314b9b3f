"""Fixtures for federation tests: a second database, registries in this process, and two countries run by the CLI.

Two registries need two databases: the one under test (``database_url``) for
the home registry and :func:`partner_database_url` for the partner, a second
SQLite file or a second PostgreSQL schema of the same server, so the
PostgreSQL run (``-m database --database-url ...``) puts both registries on
PostgreSQL.

:class:`LocalRegistry` is a registry served on loopback from this process,
with a clock the test moves (:class:`FakeClock`) and its staff workflow as
methods. Its background partner sync is stopped: tests that exercise partner
sync drive :meth:`registry.partners.PartnerSync.sync_once` themselves, against
the partner they choose. What a node of that registry would receive comes
from its public API (:meth:`LocalRegistry.node_trust`).

:func:`build_world` builds two countries the way their operators would,
through the ``clearance`` command, with registries and nodes as processes
(:mod:`tests.federation.world`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clearance.access import TokenSource
from clearance.agreement import Agreement, Party
from clearance.bundle import TrustBundle
from clearance.channel import open_channel
from clearance.keys import SigningKey
from clearance.trust import TrustStore
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api import server
from registry.context import RegistryContext
from registry.publication.partners import stop_partner_sync
from registry.setup import StaffCredential, init_registry
from tests.conftest import PostgresSchemas
from tests.federation.world import Federation, Processes, WallClockFile, build_federation

DAY = 86_400
YEAR = 365 * DAY
CATEGORIES = ("cyber-threat", "joint-research")
START = 1_790_000_000


@pytest.fixture
def partner_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_schemas: PostgresSchemas | None
) -> Iterator[str]:
    """A second fresh database for the partner registry: another SQLite file, or another PostgreSQL schema."""
    if request.node.get_closest_marker("database") is None:
        pytest.fail(f"{request.node.nodeid} uses a database but is not marked database", pytrace=False)
    if postgres_schemas is None:
        yield f"sqlite:///{tmp_path / 'partner.sqlite3'}"
        return
    name, url = postgres_schemas.create()
    try:
        yield url
    finally:
        postgres_schemas.drop(name)


class FakeClock:
    """Seconds since the epoch for every registry of a test, moved only by the test."""

    def __init__(self, start: int = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: int) -> int:
        with self._lock:
            self._now += seconds
            return self._now


@dataclass
class Cleared:
    """A cleared person as their wallet holds them: the registry's credential id, the SD-JWT, the key."""

    credential_id: str
    sd_jwt: str
    holder: SigningKey


@dataclass
class LocalRegistry:
    """A registry served on loopback (plaintext) from this process, and its staff."""

    jurisdiction: str
    ctx: RegistryContext
    running: server.RunningRegistry
    clock: FakeClock
    admin: StaffCredential
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)
    _staff: dict[str, tuple[SigningKey, str]] = field(default_factory=dict)

    @classmethod
    def start(cls, directory: Path, jurisdiction: str, database_url: str, clock: FakeClock) -> LocalRegistry:
        ctx, admin = init_registry(
            directory, jurisdiction=jurisdiction, database_url=database_url, clock=clock
        )
        running = server.start(ctx, "127.0.0.1:0", insecure=True, heartbeat=0.5, max_workers=32)
        stop_partner_sync(ctx)  # the test drives partner sync itself
        return cls(jurisdiction, ctx, running, clock, admin)

    def stop(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self.running.stop(0.5)

    # -- identity ----------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    @property
    def root(self) -> SigningKey:
        assert self.ctx.keys.root is not None
        return self.ctx.keys.root

    @property
    def issuer(self) -> str:
        return self.ctx.config.issuer

    def party(self) -> Party:
        return Party(self.jurisdiction, self.root.public, self.issuer)

    # -- calls -------------------------------------------------------------------

    def _channel(self, key: SigningKey | None = None, principal: str = "") -> grpc.Channel:
        """One channel per caller (``principal``; none for the public API), kept until :meth:`stop`."""
        channel = self._channels.get(principal)
        if channel is None:
            token = (
                TokenSource(key, principal=principal, audience=self.admin.audience, clock=self.clock)
                if key is not None
                else None
            )
            channel = self._channels[principal] = open_channel(self.endpoint, insecure=True, token=token)
        return channel

    def call(self, service: str, method: str, request: Any, *, as_role: str = "") -> Any:
        """One call as the administrator (or the staff member of ``as_role``); a refusal raises ``grpc.RpcError``."""
        if as_role:
            channel = self._channel(*self.staff(as_role))
        else:
            channel = self._channel(self.admin.key, self.admin.principal)
        return getattr(getattr(rpc, f"{service}Stub")(channel), method)(request, timeout=30)

    def publication(self) -> rpc.PublicationServiceStub:
        """The public PublicationService, as a node or a partner registry calls it."""
        return rpc.PublicationServiceStub(self._channel())

    def staff(self, role: str) -> tuple[SigningKey, str]:
        """The key and id of this registry's investigator, adjudicator or second adjudicator."""
        if role not in self._staff:
            key = SigningKey.generate()
            wire_role = common.ROLE_INVESTIGATOR if role == "investigator" else common.ROLE_ADJUDICATOR
            staff = self.call(
                "StaffService",
                "CreateStaff",
                pb.CreateStaffRequest(name=role, role=wire_role, public_jwk=json.dumps(key.public.jwk)),
            ).staff
            self._staff[role] = (key, staff.id)
        return self._staff[role]

    # -- what tests need in it -------------------------------------------------------

    def organization(self, name: str, *, level: str = "SECRET") -> str:
        org = self.call(
            "OrganizationService",
            "CreateOrganization",
            pb.CreateOrganizationRequest(
                name=name, kind=common.ORGANIZATION_KIND_LABORATORY, country=self.jurisdiction
            ),
        ).organization
        self.call(
            "OrganizationService",
            "GrantFacilityClearance",
            pb.GrantFacilityClearanceRequest(
                organization_id=org.id,
                level=level,
                categories=list(CATEGORIES),
                valid_until=Timestamp(seconds=self.clock() + 5 * YEAR),
            ),
        )
        return str(org.id)

    def facility(self, organization_id: str) -> Cleared:
        """The organization's facility credential, as its node receives it at enrollment."""
        token = self.call(
            "OrganizationService",
            "CreateEnrollmentToken",
            pb.CreateEnrollmentTokenRequest(organization_id=organization_id),
        ).token
        key = SigningKey.generate()
        enrolled = rpc.EnrollmentServiceStub(self._channel()).EnrollNode(
            pb.EnrollNodeRequest(token=token, name="lab-gateway", public_jwk=json.dumps(key.public.jwk)),
            timeout=30,
        )
        return Cleared(enrolled.node.id, enrolled.facility_credential, key)

    def cleared(self, organization_id: str, *, level: str = "SECRET") -> Cleared:
        """A person taken through consent, the seven findings and a favorable decision, then issued."""
        person = self.call(
            "PersonnelService",
            "EnrollPerson",
            pb.EnrollPersonRequest(
                organization_id=organization_id,
                personal_data=pb.PersonalData(
                    given_name="Ada", family_name="Lovelace", birthdate="1985-12-10", nationality="US"
                ),
            ),
        ).person
        assessment = self.call(
            "AssessmentService",
            "OpenAssessment",
            pb.OpenAssessmentRequest(person_id=person.id, level=level, categories=list(CATEGORIES)),
            as_role="investigator",
        ).assessment
        self.call(
            "AssessmentService",
            "RecordConsent",
            pb.RecordConsentRequest(assessment_id=assessment.id, evidence="signed form"),
            as_role="investigator",
        )
        for item in common.AssessmentItem.values():
            if item != common.ASSESSMENT_ITEM_UNSPECIFIED:
                self.call(
                    "AssessmentService",
                    "RecordFinding",
                    pb.RecordFindingRequest(
                        assessment_id=assessment.id,
                        item=item,
                        outcome=common.FINDING_OUTCOME_NO_CONCERN,
                        summary="checked",
                    ),
                    as_role="investigator",
                )
        decided = self.call(
            "AssessmentService",
            "DecideAssessment",
            pb.DecideAssessmentRequest(
                assessment_id=assessment.id, decision=common.DECISION_FAVORABLE, reasons=["no concerns"]
            ),
            as_role="adjudicator",
        )
        if decided.assessment.state == common.ASSESSMENT_STATE_AWAITING_APPROVAL:
            self.call(
                "AssessmentService",
                "ApproveDecision",
                pb.ApproveDecisionRequest(assessment_id=assessment.id, approve=True, comment="agreed"),
                as_role="second adjudicator",
            )
        holder = SigningKey.generate()
        issued = self.call(
            "CredentialService",
            "IssueCredential",
            pb.IssueCredentialRequest(assessment_id=assessment.id, holder_jwk=json.dumps(holder.public.jwk)),
            as_role="adjudicator",
        )
        return Cleared(issued.credential.id, issued.sd_jwt, holder)

    def import_agreement(self, agreement: Agreement, partner: LocalRegistry | str) -> Any:
        """ImportAgreement, naming where the partner publishes."""
        endpoint = partner if isinstance(partner, str) else partner.endpoint
        return self.call(
            "FederationService",
            "ImportAgreement",
            pb.ImportAgreementRequest(document=json.dumps(agreement.to_json()), partner_endpoint=endpoint),
        )

    def agreements(self) -> list[Any]:
        return list(self.call("FederationService", "ListAgreements", pb.ListAgreementsRequest()).agreements)

    def bundle_version(self) -> int:
        token = self.publication().GetTrustBundle(pb.GetTrustBundleRequest(), timeout=10).bundle
        return TrustBundle.parse(token)[0].version

    def node_trust(self, now: int) -> TrustStore:
        """What a node of this registry trusts once synced: the home bundle, then each partner's
        bundle and every status list, all as this registry publishes (or republishes) them."""
        stub = self.publication()
        trust = TrustStore(self.root.public)
        trust.update_bundle(stub.GetTrustBundle(pb.GetTrustBundleRequest(), timeout=10).bundle, now)
        for partner in trust.agreements:
            request = pb.GetTrustBundleRequest(jurisdiction=partner)
            trust.update_foreign_bundle(stub.GetTrustBundle(request, timeout=10).bundle, now)
        bundles = [trust.require_home(now), *(f.bundle for f in trust.foreign.values())]
        for bundle in bundles:
            for location in bundle.status_lists:
                token = stub.GetStatusList(pb.GetStatusListRequest(uri=location.uri), timeout=30).token
                trust.update_status_list(token, now)
        return trust


def agreement_between(
    home: LocalRegistry,
    partner: LocalRegistry | Party,
    partner_root: SigningKey | None = None,
    *,
    levels: list[tuple[str, str]] | None = None,
    not_before: int | None = None,
    expires_at: int | None = None,
    agreement_id: str = "JP-US-1",
) -> Agreement:
    """An agreement proposed by ``home``'s root and countersigned by the partner's (if it is given)."""
    now = home.clock()
    other = partner.party() if isinstance(partner, LocalRegistry) else partner
    proposal = Agreement.propose(
        home.root,
        agreement_id=agreement_id,
        parties=(home.party(), other),
        levels=levels or [("CONFIDENTIAL", "CONFIDENTIAL"), ("SECRET", "SECRET")],
        categories={home.jurisdiction: list(CATEGORIES), other.jurisdiction: list(CATEGORIES)},
        issued_at=now if not_before is None else min(now, not_before),
        not_before=now if not_before is None else not_before,
        expires_at=now + YEAR if expires_at is None else expires_at,
    )
    signer = partner.root if isinstance(partner, LocalRegistry) else partner_root
    return proposal if signer is None else proposal.countersign(signer)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jp(tmp_path: Path, database_url: str, clock: FakeClock) -> Iterator[LocalRegistry]:
    """The JP registry on the database under test."""
    registry = LocalRegistry.start(tmp_path / "jp", "JP", database_url, clock)
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def us(tmp_path: Path, partner_database_url: str, clock: FakeClock) -> Iterator[LocalRegistry]:
    """The US registry on the partner database."""
    registry = LocalRegistry.start(tmp_path / "us", "US", partner_database_url, clock)
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def build_world(
    tmp_path: Path, database_url: str, partner_database_url: str
) -> Iterator[Callable[..., Federation]]:
    """``build_world(jp_staleness=..., jp_clock=False, ...)``: JP on the database under test, the US on
    the partner database, both through the CLI (see :func:`tests.federation.world.build_federation`).
    Every process it started is stopped at the end of the test."""
    processes = Processes()
    clocks: list[WallClockFile] = []

    def build(*, jp_clock: bool = False, **options: Any) -> Federation:
        clock = WallClockFile(tmp_path / "jp-node-clock") if jp_clock else None
        if clock is not None:
            clocks.append(clock)
        return build_federation(
            tmp_path, database_url, partner_database_url, processes=processes, clock=clock, **options
        )

    try:
        yield build
    finally:
        processes.stop()
        for clock in clocks:
            clock.stop()
