"""The federation service: agreements with partner registries and visit assurances."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.auth import caller
from registry.api.conversions import VISIT_KINDS, agreement_pb, enum
from registry.api.servicers.base import ServicerBase
from registry.workflows import federation


class FederationServicer(ServicerBase, rpc.FederationServiceServicer):
    @handler
    def ImportAgreement(
        self, request: pb.ImportAgreementRequest, context: grpc.ServicerContext
    ) -> pb.ImportAgreementResponse:
        row = federation.import_agreement(
            self.ctx,
            caller(),
            document=request.document,
            partner_endpoint=request.partner_endpoint,
            partner_ca_pem=request.partner_ca_pem,
        )
        return pb.ImportAgreementResponse(agreement=agreement_pb(row))

    @handler
    def ListAgreements(
        self, request: pb.ListAgreementsRequest, context: grpc.ServicerContext
    ) -> pb.ListAgreementsResponse:
        return pb.ListAgreementsResponse(
            agreements=[agreement_pb(r) for r in federation.list_agreements(self.ctx)]
        )

    @handler
    def TerminateAgreement(
        self, request: pb.TerminateAgreementRequest, context: grpc.ServicerContext
    ) -> pb.TerminateAgreementResponse:
        row = federation.terminate_agreement(
            self.ctx, caller(), agreement_id=request.id, reason=request.reason
        )
        return pb.TerminateAgreementResponse(agreement=agreement_pb(row))

    @handler
    def IssueVisitAssurance(
        self, request: pb.IssueVisitAssuranceRequest, context: grpc.ServicerContext
    ) -> pb.IssueVisitAssuranceResponse:
        token = federation.issue_visit(
            self.ctx,
            caller(),
            credential_id=request.credential_id,
            host_jurisdiction=request.host_jurisdiction,
            host_organization=request.host_organization,
            programme=request.programme,
            kind=enum(VISIT_KINDS, request.kind, "kind"),
            not_before=request.not_before.seconds,
            not_after=request.not_after.seconds,
        )
        return pb.IssueVisitAssuranceResponse(assurance=token)
