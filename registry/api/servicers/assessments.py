"""The assessment service: consent, findings, decisions, notices, appeals."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.auth import caller
from registry.api.conversions import (
    APPEAL_STATES_BACK,
    ASSESSMENT_STATES_BACK,
    DECISIONS_BACK,
    ITEMS,
    OUTCOMES,
    appeal_pb,
    assessment_pb,
    enum,
    notice_pb,
    optional_notice_pb,
    page,
)
from registry.api.servicers.base import ServicerBase
from registry.workflows import appeals, assessments, decisions


class AssessmentServicer(ServicerBase, rpc.AssessmentServiceServicer):
    @handler
    def OpenAssessment(
        self, request: pb.OpenAssessmentRequest, context: grpc.ServicerContext
    ) -> pb.OpenAssessmentResponse:
        view = assessments.open_assessment(
            self.ctx,
            caller(),
            person_id=request.person_id,
            level=request.level,
            categories=list(request.categories),
            idempotency_key=request.idempotency_key,
        )
        return pb.OpenAssessmentResponse(assessment=assessment_pb(view))

    @handler
    def RecordConsent(
        self, request: pb.RecordConsentRequest, context: grpc.ServicerContext
    ) -> pb.RecordConsentResponse:
        view = assessments.record_consent(
            self.ctx, caller(), assessment_id=request.assessment_id, evidence=request.evidence
        )
        return pb.RecordConsentResponse(assessment=assessment_pb(view))

    @handler
    def WithdrawConsent(
        self, request: pb.WithdrawConsentRequest, context: grpc.ServicerContext
    ) -> pb.WithdrawConsentResponse:
        view, suspended = assessments.withdraw_consent(
            self.ctx, caller(), assessment_id=request.assessment_id, reason=request.reason
        )
        return pb.WithdrawConsentResponse(assessment=assessment_pb(view), suspended_credentials=suspended)

    @handler
    def RecordFinding(
        self, request: pb.RecordFindingRequest, context: grpc.ServicerContext
    ) -> pb.RecordFindingResponse:
        view = assessments.record_finding(
            self.ctx,
            caller(),
            assessment_id=request.assessment_id,
            item=enum(ITEMS, request.item, "item").value,
            outcome=enum(OUTCOMES, request.outcome, "outcome"),
            summary=request.summary,
        )
        return pb.RecordFindingResponse(assessment=assessment_pb(view))

    @handler
    def DecideAssessment(
        self, request: pb.DecideAssessmentRequest, context: grpc.ServicerContext
    ) -> pb.DecideAssessmentResponse:
        view, notice = decisions.decide(
            self.ctx,
            caller(),
            assessment_id=request.assessment_id,
            decision=enum(DECISIONS_BACK, request.decision, "decision"),
            reasons=list(request.reasons),
        )
        return pb.DecideAssessmentResponse(assessment=assessment_pb(view), notice=optional_notice_pb(notice))

    @handler
    def ApproveDecision(
        self, request: pb.ApproveDecisionRequest, context: grpc.ServicerContext
    ) -> pb.ApproveDecisionResponse:
        view, notice = decisions.approve(
            self.ctx,
            caller(),
            assessment_id=request.assessment_id,
            approve=request.approve,
            comment=request.comment,
        )
        return pb.ApproveDecisionResponse(assessment=assessment_pb(view), notice=optional_notice_pb(notice))

    @handler
    def GetAssessment(
        self, request: pb.GetAssessmentRequest, context: grpc.ServicerContext
    ) -> pb.GetAssessmentResponse:
        return pb.GetAssessmentResponse(
            assessment=assessment_pb(assessments.get_assessment(self.ctx, caller(), request.id))
        )

    @handler
    def ListAssessments(
        self, request: pb.ListAssessmentsRequest, context: grpc.ServicerContext
    ) -> pb.ListAssessmentsResponse:
        listed = assessments.list_assessments(
            self.ctx,
            person_id=request.person_id,
            state=enum(ASSESSMENT_STATES_BACK, request.state, "state", optional=True),
            page=page(request.page),
        )
        return pb.ListAssessmentsResponse(
            assessments=[assessment_pb(v) for v in listed.items], next_page_token=listed.next_page_token
        )

    @handler
    def GetNotice(self, request: pb.GetNoticeRequest, context: grpc.ServicerContext) -> pb.GetNoticeResponse:
        return pb.GetNoticeResponse(
            notice=notice_pb(assessments.get_notice(self.ctx, caller(), request.assessment_id))
        )

    @handler
    def FileAppeal(
        self, request: pb.FileAppealRequest, context: grpc.ServicerContext
    ) -> pb.FileAppealResponse:
        view = appeals.file_appeal(
            self.ctx, caller(), assessment_id=request.assessment_id, grounds=request.grounds
        )
        return pb.FileAppealResponse(appeal=appeal_pb(view))

    @handler
    def ResolveAppeal(
        self, request: pb.ResolveAppealRequest, context: grpc.ServicerContext
    ) -> pb.ResolveAppealResponse:
        appeal, view = appeals.resolve_appeal(
            self.ctx,
            caller(),
            appeal_id=request.appeal_id,
            uphold=request.uphold,
            resolution=request.resolution,
        )
        return pb.ResolveAppealResponse(appeal=appeal_pb(appeal), assessment=assessment_pb(view))

    @handler
    def ListAppeals(
        self, request: pb.ListAppealsRequest, context: grpc.ServicerContext
    ) -> pb.ListAppealsResponse:
        listed = appeals.list_appeals(
            self.ctx,
            state=enum(APPEAL_STATES_BACK, request.state, "state", optional=True),
            page=page(request.page),
        )
        return pb.ListAppealsResponse(
            appeals=[appeal_pb(v) for v in listed.items], next_page_token=listed.next_page_token
        )
