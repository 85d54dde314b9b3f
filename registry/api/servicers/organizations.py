"""The organization service: organizations, facility clearances, enrollment tokens, nodes."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.auth import caller
from registry.api.conversions import KINDS, enum, node_pb, organization_pb, page, seconds, ts
from registry.api.servicers.base import ServicerBase
from registry.workflows import enrollment, lifecycle, organizations


class OrganizationServicer(ServicerBase, rpc.OrganizationServiceServicer):
    @handler
    def CreateOrganization(
        self, request: pb.CreateOrganizationRequest, context: grpc.ServicerContext
    ) -> pb.CreateOrganizationResponse:
        org = organizations.create_organization(
            self.ctx,
            caller(),
            name=request.name,
            kind=enum(KINDS, request.kind, "kind"),
            country=request.country,
            idempotency_key=request.idempotency_key,
        )
        return pb.CreateOrganizationResponse(organization=organization_pb(org))

    @handler
    def GetOrganization(
        self, request: pb.GetOrganizationRequest, context: grpc.ServicerContext
    ) -> pb.GetOrganizationResponse:
        return pb.GetOrganizationResponse(
            organization=organization_pb(organizations.read_organization(self.ctx, caller(), request.id))
        )

    @handler
    def ListOrganizations(
        self, request: pb.ListOrganizationsRequest, context: grpc.ServicerContext
    ) -> pb.ListOrganizationsResponse:
        listed = organizations.list_organizations(self.ctx, page(request.page))
        return pb.ListOrganizationsResponse(
            organizations=[organization_pb(o) for o in listed.items], next_page_token=listed.next_page_token
        )

    @handler
    def GrantFacilityClearance(
        self, request: pb.GrantFacilityClearanceRequest, context: grpc.ServicerContext
    ) -> pb.GrantFacilityClearanceResponse:
        org = organizations.grant_facility_clearance(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            level=request.level,
            categories=list(request.categories),
            valid_until=seconds(request.valid_until, "valid_until"),
        )
        return pb.GrantFacilityClearanceResponse(organization=organization_pb(org))

    @handler
    def WithdrawFacilityClearance(
        self, request: pb.WithdrawFacilityClearanceRequest, context: grpc.ServicerContext
    ) -> pb.WithdrawFacilityClearanceResponse:
        org, suspended = lifecycle.withdraw_facility_clearance(
            self.ctx, caller(), organization_id=request.organization_id, reason=request.reason
        )
        return pb.WithdrawFacilityClearanceResponse(
            organization=organization_pb(org), suspended_credentials=suspended
        )

    @handler
    def CreateEnrollmentToken(
        self, request: pb.CreateEnrollmentTokenRequest, context: grpc.ServicerContext
    ) -> pb.CreateEnrollmentTokenResponse:
        issued = enrollment.create_enrollment_token(
            self.ctx, caller(), organization_id=request.organization_id, ttl_seconds=request.ttl_seconds
        )
        return pb.CreateEnrollmentTokenResponse(
            token=issued.token, expires_at=ts(issued.expires_at), root_fingerprint=issued.root_fingerprint
        )

    @handler
    def ListNodes(self, request: pb.ListNodesRequest, context: grpc.ServicerContext) -> pb.ListNodesResponse:
        listed = enrollment.list_nodes(
            self.ctx, caller(), organization_id=request.organization_id, page=page(request.page)
        )
        return pb.ListNodesResponse(
            nodes=[node_pb(n) for n in listed.items], next_page_token=listed.next_page_token
        )
