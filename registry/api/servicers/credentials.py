"""The credential service: issuance and the states after it."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.auth import caller
from registry.api.conversions import CREDENTIAL_STATES_BACK, enum
from registry.api.servicers.base import ServicerBase
from registry.policy import require_scope
from registry.workflows import issuance, lifecycle, organizations
from registry.workflows.lifecycle import CredentialState


class CredentialServicer(ServicerBase, rpc.CredentialServiceServicer):
    @handler
    def IssueCredential(
        self, request: pb.IssueCredentialRequest, context: grpc.ServicerContext
    ) -> pb.IssueCredentialResponse:
        issued = issuance.issue_credential(
            self.ctx,
            caller(),
            issuance.IssueRequest(request.assessment_id, request.holder_jwk, request.idempotency_key),
        )
        return pb.IssueCredentialResponse(
            credential=self.credential_message(issued.credential), sd_jwt=issued.sd_jwt
        )

    @handler
    def BulkIssueCredentials(
        self, request: pb.BulkIssueCredentialsRequest, context: grpc.ServicerContext
    ) -> pb.BulkIssueCredentialsResponse:
        results = issuance.bulk_issue(
            self.ctx,
            caller(),
            [
                issuance.IssueRequest(r.assessment_id, r.holder_jwk, r.idempotency_key)
                for r in request.requests
            ],
        )
        return pb.BulkIssueCredentialsResponse(
            results=[
                pb.IssueCredentialResponse(credential=self.credential_message(r.credential), sd_jwt=r.sd_jwt)
                for r in results
            ]
        )

    @handler
    def IssueFacilityCredential(
        self, request: pb.IssueFacilityCredentialRequest, context: grpc.ServicerContext
    ) -> pb.IssueFacilityCredentialResponse:
        issued = issuance.issue_facility(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            node_id=request.node_id,
            idempotency_key=request.idempotency_key,
        )
        return pb.IssueFacilityCredentialResponse(
            credential=self.credential_message(issued.credential), sd_jwt=issued.sd_jwt
        )

    @handler
    def GetCredential(
        self, request: pb.GetCredentialRequest, context: grpc.ServicerContext
    ) -> pb.GetCredentialResponse:
        with self.ctx.db.transaction() as session:
            credential = lifecycle.get_credential(session, request.id)
        require_scope(caller(), credential.organization_id)
        return pb.GetCredentialResponse(credential=self.credential_message(credential))

    @handler
    def ListCredentials(
        self, request: pb.ListCredentialsRequest, context: grpc.ServicerContext
    ) -> pb.ListCredentialsResponse:
        limit, offset = organizations.page_bounds(request.page.page_size, request.page.page_token)
        state = enum(CREDENTIAL_STATES_BACK, request.state, "state", optional=True)
        rows = lifecycle.list_credentials(
            self.ctx,
            caller(),
            person_id=request.person_id,
            organization_id=request.organization_id,
            state=state.value if state else "",
            limit=limit,
            offset=offset,
        )
        return pb.ListCredentialsResponse(
            credentials=[self.credential_message(c) for c in rows],
            next_page_token=organizations.next_token(offset, limit, len(rows)),
        )

    def _change(self, credential_id: str, target: CredentialState, reason: str) -> pb.CredentialRecord:
        credential = lifecycle.change_state(
            self.ctx, caller(), credential_id=credential_id, target=target, reason=reason
        )
        return self.credential_message(credential)

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
