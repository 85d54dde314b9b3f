"""The federation service: agreements with partner registries and visit assurances."""

from __future__ import annotations

import grpc

from clearance.errors import InvalidArgumentError
from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.auth import caller
from registry.api.conversions import VISIT_KINDS, agreement_pb
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
        return pb.ImportAgreementResponse(agreement=agreement_pb(row, self.ctx.now()))

    @handler
    def ListAgreements(
        self, request: pb.ListAgreementsRequest, context: grpc.ServicerContext
    ) -> pb.ListAgreementsResponse:
        now = self.ctx.now()
        return pb.ListAgreementsResponse(
            agreements=[agreement_pb(r, now) for r in federation.list_agreements(self.ctx)]
        )

    @handler
    def TerminateAgreement(
        self, request: pb.TerminateAgreementRequest, context: grpc.ServicerContext
    ) -> pb.TerminateAgreementResponse:
        row = federation.terminate_agreement(
            self.ctx, caller(), agreement_id=request.id, reason=request.reason
        )
        return pb.TerminateAgreementResponse(agreement=agreement_pb(row, self.ctx.now()))

    @handler
    def IssueVisitAssurance(
        self, request: pb.IssueVisitAssuranceRequest, context: grpc.ServicerContext
    ) -> pb.IssueVisitAssuranceResponse:
        kind = VISIT_KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgumentError("kind", "is missing or not a known value")
        token = federation.issue_visit(
            self.ctx,
            caller(),
            credential_id=request.credential_id,
            host_jurisdiction=request.host_jurisdiction,
            host_organization=request.host_organization,
            programme=request.programme,
            kind=kind,
            not_before=request.not_before.seconds,
            not_after=request.not_after.seconds or (self.ctx.now() + 30 * 86400),
        )
        return pb.IssueVisitAssuranceResponse(assurance=token)
