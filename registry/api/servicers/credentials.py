"""The credential service: issuance and the states after it."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.auth import caller
from registry.api.conversions import CREDENTIAL_STATES_BACK, credential_pb, enum, page
from registry.api.servicers.base import ServicerBase
from registry.workflows import lifecycle
from registry.workflows.credentials import CredentialState
from registry.workflows.issuance import bulk, facility, personnel
from registry.workflows.issuance.records import IssuedCredential, IssueRequest


def _issued_pb(issued: IssuedCredential) -> pb.IssueCredentialResponse:
    return pb.IssueCredentialResponse(credential=credential_pb(issued.credential), sd_jwt=issued.sd_jwt)


def _request(message: pb.IssueCredentialRequest) -> IssueRequest:
    return IssueRequest(message.assessment_id, message.holder_jwk, message.idempotency_key)


class CredentialServicer(ServicerBase, rpc.CredentialServiceServicer):
    @handler
    def IssueCredential(
        self, request: pb.IssueCredentialRequest, context: grpc.ServicerContext
    ) -> pb.IssueCredentialResponse:
        return _issued_pb(personnel.issue_credential(self.ctx, caller(), _request(request)))

    @handler
    def BulkIssueCredentials(
        self, request: pb.BulkIssueCredentialsRequest, context: grpc.ServicerContext
    ) -> pb.BulkIssueCredentialsResponse:
        results = bulk.bulk_issue(self.ctx, caller(), [_request(r) for r in request.requests])
        return pb.BulkIssueCredentialsResponse(results=[_issued_pb(r) for r in results])

    @handler
    def IssueFacilityCredential(
        self, request: pb.IssueFacilityCredentialRequest, context: grpc.ServicerContext
    ) -> pb.IssueFacilityCredentialResponse:
        issued = facility.issue_facility(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            node_id=request.node_id,
            idempotency_key=request.idempotency_key,
        )
        return pb.IssueFacilityCredentialResponse(
            credential=credential_pb(issued.credential), sd_jwt=issued.sd_jwt
        )

    @handler
    def GetCredential(
        self, request: pb.GetCredentialRequest, context: grpc.ServicerContext
    ) -> pb.GetCredentialResponse:
        return pb.GetCredentialResponse(
            credential=credential_pb(lifecycle.read_credential(self.ctx, caller(), request.id))
        )

    @handler
    def ListCredentials(
        self, request: pb.ListCredentialsRequest, context: grpc.ServicerContext
    ) -> pb.ListCredentialsResponse:
        listed = lifecycle.list_credentials(
            self.ctx,
            caller(),
            person_id=request.person_id,
            organization_id=request.organization_id,
            state=enum(CREDENTIAL_STATES_BACK, request.state, "state", optional=True),
            page=page(request.page),
        )
        return pb.ListCredentialsResponse(
            credentials=[credential_pb(c) for c in listed.items], next_page_token=listed.next_page_token
        )

    def _change(self, credential_id: str, target: CredentialState, reason: str) -> pb.CredentialRecord:
        return credential_pb(
            lifecycle.change_state(
                self.ctx, caller(), credential_id=credential_id, target=target, reason=reason
            )
        )

    @handler
    def SuspendCredential(
        self, request: pb.SuspendCredentialRequest, context: grpc.ServicerContext
    ) -> pb.SuspendCredentialResponse:
        return pb.SuspendCredentialResponse(
            credential=self._change(request.id, CredentialState.SUSPENDED, request.reason)
        )

    @handler
    def ReinstateCredential(
        self, request: pb.ReinstateCredentialRequest, context: grpc.ServicerContext
    ) -> pb.ReinstateCredentialResponse:
        return pb.ReinstateCredentialResponse(
            credential=self._change(request.id, CredentialState.VALID, request.reason)
        )

    @handler
    def RevokeCredential(
        self, request: pb.RevokeCredentialRequest, context: grpc.ServicerContext
    ) -> pb.RevokeCredentialResponse:
        return pb.RevokeCredentialResponse(
            credential=self._change(request.id, CredentialState.REVOKED, request.reason)
        )
