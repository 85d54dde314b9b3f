"""``AuditService``: the registry's hash-chained audit log, its statistics, and the facts oversight checks."""

from __future__ import annotations

from dataclasses import dataclass

from clearance.client.common import (
    AssessmentItem,
    AssessmentState,
    CredentialState,
    Decision,
    Page,
    from_wire,
    page_request,
    seconds_of,
)
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event of the chain (it never holds personal data)."""

    sequence: int
    at: int | None
    actor: str
    action: str
    object_type: str
    object_id: str
    details_json: str
    hash: str
    previous_hash: str

    @classmethod
    def from_pb(cls, m: pb.AuditEvent) -> AuditEvent:
        return cls(
            sequence=m.sequence,
            at=seconds_of(m.at, m.HasField("at")),
            actor=m.actor,
            action=m.action,
            object_type=m.object_type,
            object_id=m.object_id,
            details_json=m.details_json,
            hash=m.hash,
            previous_hash=m.previous_hash,
        )


@dataclass(frozen=True, slots=True)
class AuditChainReport:
    """The result of walking the whole chain: intact, or where it first breaks and why."""

    intact: bool
    events_checked: int
    broken_at: int
    problem: str
    head_hash: str


@dataclass(frozen=True, slots=True)
class DecisionFacts:
    """The decision a credential was issued from, as the registry's tables hold it (no personal data)."""

    state: AssessmentState
    decision: Decision
    level: str
    consent_at: int | None
    consent_by: str
    items: tuple[AssessmentItem, ...]
    """The items with a recorded finding."""
    investigators: tuple[str, ...]
    """Staff ids who recorded the consent or a finding."""
    decided_by: str
    decided_at: int | None
    approved_by: str
    approved_at: int | None

    @classmethod
    def from_pb(cls, m: pb.DecisionFacts) -> DecisionFacts:
        return cls(
            state=from_wire(AssessmentState, m.state),
            decision=from_wire(Decision, m.decision),
            level=m.level,
            consent_at=seconds_of(m.consent_at, m.HasField("consent_at")),
            consent_by=m.consent_by,
            items=tuple(from_wire(AssessmentItem, item) for item in m.items),
            investigators=tuple(m.investigators),
            decided_by=m.decided_by,
            decided_at=seconds_of(m.decided_at, m.HasField("decided_at")),
            approved_by=m.approved_by,
            approved_at=seconds_of(m.approved_at, m.HasField("approved_at")),
        )


@dataclass(frozen=True, slots=True)
class IssuanceFact:
    """A personnel credential and the decision it was issued from."""

    credential_id: str
    assessment_id: str
    organization_id: str
    level: str
    issued_at: int | None
    decision: DecisionFacts | None
    """None when the credential names no assessment the registry knows."""

    @classmethod
    def from_pb(cls, m: pb.IssuanceFact) -> IssuanceFact:
        return cls(
            credential_id=m.credential_id,
            assessment_id=m.assessment_id,
            organization_id=m.organization_id,
            level=m.level,
            issued_at=seconds_of(m.issued_at, m.HasField("issued_at")),
            decision=DecisionFacts.from_pb(m.decision) if m.decision.found else None,
        )


@dataclass(frozen=True, slots=True)
class CredentialStateFact:
    """A credential that is not valid: its state, cause, and whether a reason was recorded."""

    credential_id: str
    kind: str
    state: CredentialState
    cause: str
    reason_recorded: bool

    @classmethod
    def from_pb(cls, m: pb.CredentialStateFact) -> CredentialStateFact:
        return cls(m.credential_id, m.kind, from_wire(CredentialState, m.state), m.cause, m.reason_recorded)


class Audit:
    """Calls of ``AuditService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.AuditServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def events(
        self, *, after_sequence: int = 0, action: str = "", object_id: str = "", limit: int = 0
    ) -> list[AuditEvent]:
        request = pb.ListAuditEventsRequest(
            after_sequence=after_sequence, action=action, object_id=object_id, limit=limit
        )
        return [
            AuditEvent.from_pb(e) for e in self._stub.ListAuditEvents(request, timeout=self._timeout).events
        ]

    def verify_chain(self) -> AuditChainReport:
        r = self._stub.VerifyAuditChain(pb.VerifyAuditChainRequest(), timeout=self._timeout)
        return AuditChainReport(r.intact, r.events_checked, r.broken_at, r.problem, r.head_hash)

    def statistics(self) -> dict[str, int]:
        """Aggregate counts by state (what oversight sees instead of files)."""
        return dict(self._stub.GetStatistics(pb.GetStatisticsRequest(), timeout=self._timeout).counts)

    def monthly_report(self, month: str) -> str:
        """The registry's signed report of ``month`` (YYYY-MM), as a compact JWS (verify it before use)."""
        request = pb.GetMonthlyReportRequest(month=month)
        return self._stub.GetMonthlyReport(request, timeout=self._timeout).report

    def issuance_facts(self, *, page_size: int = 0, page_token: str = "") -> Page[IssuanceFact]:
        """One page of personnel credentials with their decisions' facts (oversight only)."""
        response = self._stub.ListIssuanceFacts(
            pb.ListIssuanceFactsRequest(page=page_request(page_size, page_token)), timeout=self._timeout
        )
        return Page(tuple(IssuanceFact.from_pb(f) for f in response.facts), response.next_page_token)

    def credential_states(self, *, page_size: int = 0, page_token: str = "") -> Page[CredentialStateFact]:
        """One page of the credentials that are suspended or revoked (oversight only)."""
        response = self._stub.ListCredentialStates(
            pb.ListCredentialStatesRequest(page=page_request(page_size, page_token)), timeout=self._timeout
        )
        return Page(
            tuple(CredentialStateFact.from_pb(f) for f in response.credentials), response.next_page_token
        )
