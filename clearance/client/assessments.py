"""``AssessmentService``: consent, the seven findings, decisions, notices and appeals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearance.client.common import (
    AppealState,
    AssessmentItem,
    AssessmentState,
    Decision,
    FindingOutcome,
    Page,
    from_wire,
    page_request,
    seconds_of,
)
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


@dataclass(frozen=True, slots=True)
class Finding:
    item: AssessmentItem
    outcome: FindingOutcome
    summary: str
    recorded_at: int | None
    recorded_by: str


@dataclass(frozen=True, slots=True)
class Assessment:
    id: str
    person_id: str
    state: AssessmentState
    level: str
    categories: tuple[str, ...]
    consent_at: int | None
    findings: tuple[Finding, ...]
    decision: Decision
    reasons: tuple[str, ...]
    decided_at: int | None
    valid_until: int | None
    opened_at: int | None
    consent_by: str
    """Staff ids (empty when not recorded): who recorded the consent, decided, approved."""
    decided_by: str
    approved_by: str
    approved_at: int | None

    @classmethod
    def from_pb(cls, m: pb.Assessment) -> Assessment:
        return cls(
            id=m.id,
            person_id=m.person_id,
            state=from_wire(AssessmentState, m.state),
            level=m.level,
            categories=tuple(m.categories),
            consent_at=seconds_of(m.consent_at, m.HasField("consent_at")),
            findings=tuple(
                Finding(
                    from_wire(AssessmentItem, f.item),
                    from_wire(FindingOutcome, f.outcome),
                    f.summary,
                    seconds_of(f.recorded_at, f.HasField("recorded_at")),
                    f.recorded_by,
                )
                for f in m.findings
            ),
            decision=from_wire(Decision, m.decision),
            reasons=tuple(m.reasons),
            decided_at=seconds_of(m.decided_at, m.HasField("decided_at")),
            valid_until=seconds_of(m.valid_until, m.HasField("valid_until")),
            opened_at=seconds_of(m.opened_at, m.HasField("opened_at")),
            consent_by=m.consent_by,
            decided_by=m.decided_by,
            approved_by=m.approved_by,
            approved_at=seconds_of(m.approved_at, m.HasField("approved_at")),
        )


@dataclass(frozen=True, slots=True)
class Notice:
    """The decision notice sent to the person."""

    id: str
    assessment_id: str
    decision: Decision
    reasons: tuple[str, ...]
    appeal_instructions: str
    appeal_deadline: int | None
    issued_at: int | None

    @classmethod
    def from_pb(cls, m: pb.Notice) -> Notice:
        return cls(
            id=m.id,
            assessment_id=m.assessment_id,
            decision=from_wire(Decision, m.decision),
            reasons=tuple(m.reasons),
            appeal_instructions=m.appeal_instructions,
            appeal_deadline=seconds_of(m.appeal_deadline, m.HasField("appeal_deadline")),
            issued_at=seconds_of(m.issued_at, m.HasField("issued_at")),
        )


@dataclass(frozen=True, slots=True)
class Appeal:
    id: str
    assessment_id: str
    state: AppealState
    grounds: str
    resolution: str
    filed_at: int | None
    resolved_at: int | None
    resolved_by: str

    @classmethod
    def from_pb(cls, m: pb.Appeal) -> Appeal:
        return cls(
            id=m.id,
            assessment_id=m.assessment_id,
            state=from_wire(AppealState, m.state),
            grounds=m.grounds,
            resolution=m.resolution,
            filed_at=seconds_of(m.filed_at, m.HasField("filed_at")),
            resolved_at=seconds_of(m.resolved_at, m.HasField("resolved_at")),
            resolved_by=m.resolved_by,
        )


@dataclass(frozen=True, slots=True)
class ConsentWithdrawal:
    assessment: Assessment
    suspended_credentials: int


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision and its notice; no notice while a Top Secret decision awaits a second adjudicator."""

    assessment: Assessment
    notice: Notice | None

    @classmethod
    def from_pb(cls, m: pb.DecideAssessmentResponse | pb.ApproveDecisionResponse) -> Decided:
        return cls(
            Assessment.from_pb(m.assessment), Notice.from_pb(m.notice) if m.HasField("notice") else None
        )


@dataclass(frozen=True, slots=True)
class Resolved:
    appeal: Appeal
    assessment: Assessment


class Assessments:
    """Calls of ``AssessmentService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.AssessmentServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def open(
        self, person_id: str, *, level: str, categories: Sequence[str], idempotency_key: str = ""
    ) -> Assessment:
        request = pb.OpenAssessmentRequest(
            person_id=person_id, level=level, categories=list(categories), idempotency_key=idempotency_key
        )
        return Assessment.from_pb(self._stub.OpenAssessment(request, timeout=self._timeout).assessment)

    def record_consent(self, assessment_id: str, *, evidence: str) -> Assessment:
        request = pb.RecordConsentRequest(assessment_id=assessment_id, evidence=evidence)
        return Assessment.from_pb(self._stub.RecordConsent(request, timeout=self._timeout).assessment)

    def withdraw_consent(self, assessment_id: str, *, reason: str) -> ConsentWithdrawal:
        request = pb.WithdrawConsentRequest(assessment_id=assessment_id, reason=reason)
        response = self._stub.WithdrawConsent(request, timeout=self._timeout)
        return ConsentWithdrawal(Assessment.from_pb(response.assessment), response.suspended_credentials)

    def record_finding(
        self, assessment_id: str, *, item: AssessmentItem, outcome: FindingOutcome, summary: str
    ) -> Assessment:
        request = pb.RecordFindingRequest(
            assessment_id=assessment_id,
            item=common.AssessmentItem.Value(item.wire_name()),
            outcome=common.FindingOutcome.Value(outcome.wire_name()),
            summary=summary,
        )
        return Assessment.from_pb(self._stub.RecordFinding(request, timeout=self._timeout).assessment)

    def decide(self, assessment_id: str, *, decision: Decision, reasons: Sequence[str]) -> Decided:
        request = pb.DecideAssessmentRequest(
            assessment_id=assessment_id,
            decision=common.Decision.Value(decision.wire_name()),
            reasons=list(reasons),
        )
        return Decided.from_pb(self._stub.DecideAssessment(request, timeout=self._timeout))

    def approve(self, assessment_id: str, *, approve: bool, comment: str) -> Decided:
        """As the second adjudicator, approve a Top Secret decision (it takes effect) or send it back."""
        request = pb.ApproveDecisionRequest(assessment_id=assessment_id, approve=approve, comment=comment)
        return Decided.from_pb(self._stub.ApproveDecision(request, timeout=self._timeout))

    def get(self, assessment_id: str) -> Assessment:
        response = self._stub.GetAssessment(pb.GetAssessmentRequest(id=assessment_id), timeout=self._timeout)
        return Assessment.from_pb(response.assessment)

    def list(
        self,
        person_id: str = "",
        *,
        state: AssessmentState = AssessmentState.UNSPECIFIED,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[Assessment]:
        response = self._stub.ListAssessments(
            pb.ListAssessmentsRequest(
                person_id=person_id,
                state=common.AssessmentState.Value(state.wire_name()),
                page=page_request(page_size, page_token),
            ),
            timeout=self._timeout,
        )
        return Page(tuple(Assessment.from_pb(a) for a in response.assessments), response.next_page_token)

    def get_notice(self, assessment_id: str) -> Notice:
        response = self._stub.GetNotice(
            pb.GetNoticeRequest(assessment_id=assessment_id), timeout=self._timeout
        )
        return Notice.from_pb(response.notice)

    def file_appeal(self, assessment_id: str, *, grounds: str) -> Appeal:
        request = pb.FileAppealRequest(assessment_id=assessment_id, grounds=grounds)
        return Appeal.from_pb(self._stub.FileAppeal(request, timeout=self._timeout).appeal)

    def resolve_appeal(self, appeal_id: str, *, uphold: bool, resolution: str) -> Resolved:
        """Resolve an appeal (oversight only); upholding it reopens the assessment."""
        request = pb.ResolveAppealRequest(appeal_id=appeal_id, uphold=uphold, resolution=resolution)
        response = self._stub.ResolveAppeal(request, timeout=self._timeout)
        return Resolved(Appeal.from_pb(response.appeal), Assessment.from_pb(response.assessment))

    def list_appeals(
        self, *, state: AppealState = AppealState.UNSPECIFIED, page_size: int = 0, page_token: str = ""
    ) -> Page[Appeal]:
        response = self._stub.ListAppeals(
            pb.ListAppealsRequest(
                state=common.AppealState.Value(state.wire_name()), page=page_request(page_size, page_token)
            ),
            timeout=self._timeout,
        )
        return Page(tuple(Appeal.from_pb(a) for a in response.appeals), response.next_page_token)
