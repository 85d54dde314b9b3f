"""The staff service: staff accounts and their roles."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.auth import caller
from registry.api.conversions import ROLES, ROLES_BACK, enum, page, staff_pb
from registry.api.servicers.base import ServicerBase
from registry.workflows import organizations


class StaffServicer(ServicerBase, rpc.StaffServiceServicer):
    @handler
    def CreateStaff(
        self, request: pb.CreateStaffRequest, context: grpc.ServicerContext
    ) -> pb.CreateStaffResponse:
        role = enum(ROLES, request.role, "role")
        staff = organizations.create_staff(
            self.ctx,
            caller(),
            name=request.name,
            role=role.value,
            organization_id=request.organization_id,
            public_jwk=request.public_jwk,
        )
        return pb.CreateStaffResponse(staff=staff_pb(staff))

    @handler
    def ListStaff(self, request: pb.ListStaffRequest, context: grpc.ServicerContext) -> pb.ListStaffResponse:
        listed = organizations.list_staff(self.ctx, page(request.page))
        return pb.ListStaffResponse(
            staff=[staff_pb(s) for s in listed.items], next_page_token=listed.next_page_token
        )

    @handler
    def DisableStaff(
        self, request: pb.DisableStaffRequest, context: grpc.ServicerContext
    ) -> pb.DisableStaffResponse:
        return pb.DisableStaffResponse(
            staff=staff_pb(organizations.disable_staff(self.ctx, caller(), request.id))
        )

    @handler
    def ReassignStaff(
        self, request: pb.ReassignStaffRequest, context: grpc.ServicerContext
    ) -> pb.ReassignStaffResponse:
        role = enum(ROLES, request.role, "role")
        staff = organizations.reassign_staff(
            self.ctx,
            caller(),
            staff_id=request.id,
            role=role.value,
            organization_id=request.organization_id,
            public_jwk=request.public_jwk,
        )
        return pb.ReassignStaffResponse(staff=staff_pb(staff))

    @handler
    def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.ServicerContext) -> pb.WhoAmIResponse:
        identity = organizations.who_am_i(self.ctx, caller())
        return pb.WhoAmIResponse(
            principal=identity.caller.principal,
            role=ROLES_BACK[identity.caller.role],
            organization_id=identity.caller.organization_id or "",
            jurisdiction=identity.jurisdiction,
        )
