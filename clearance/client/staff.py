"""``StaffService``: staff accounts, their roles and keys."""

from __future__ import annotations

from dataclasses import dataclass

from clearance.client.common import Page, Role, from_wire, page_request
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


@dataclass(frozen=True, slots=True)
class Staff:
    id: str
    name: str
    role: Role
    organization_id: str
    """The organization of a security officer; empty for other roles."""
    key_thumbprint: str
    disabled: bool

    @classmethod
    def from_pb(cls, message: pb.Staff) -> Staff:
        return cls(
            id=message.id,
            name=message.name,
            role=from_wire(Role, message.role),
            organization_id=message.organization_id,
            key_thumbprint=message.key_thumbprint,
            disabled=message.disabled,
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the registry thinks the caller is."""

    principal: str
    role: Role
    organization_id: str
    jurisdiction: str


class StaffAccounts:
    """Calls of ``StaffService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.StaffServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def create(self, name: str, *, role: Role, public_jwk: str, organization_id: str = "") -> Staff:
        """Register a staff member's public key (a JWK as JSON) with a role."""
        request = pb.CreateStaffRequest(
            name=name,
            role=common.Role.Value(role.wire_name()),
            organization_id=organization_id,
            public_jwk=public_jwk,
        )
        return Staff.from_pb(self._stub.CreateStaff(request, timeout=self._timeout).staff)

    def list(self, *, page_size: int = 0, page_token: str = "") -> Page[Staff]:
        response = self._stub.ListStaff(
            pb.ListStaffRequest(page=page_request(page_size, page_token)), timeout=self._timeout
        )
        return Page(tuple(Staff.from_pb(s) for s in response.staff), response.next_page_token)

    def disable(self, staff_id: str) -> Staff:
        return Staff.from_pb(
            self._stub.DisableStaff(pb.DisableStaffRequest(id=staff_id), timeout=self._timeout).staff
        )

    def reassign(self, staff_id: str, *, role: Role, public_jwk: str, organization_id: str = "") -> Staff:
        """Move an account to another role with a new key; what it did before still counts against it."""
        request = pb.ReassignStaffRequest(
            id=staff_id,
            role=common.Role.Value(role.wire_name()),
            organization_id=organization_id,
            public_jwk=public_jwk,
        )
        return Staff.from_pb(self._stub.ReassignStaff(request, timeout=self._timeout).staff)

    def who_am_i(self) -> Identity:
        response = self._stub.WhoAmI(pb.WhoAmIRequest(), timeout=self._timeout)
        return Identity(
            response.principal,
            from_wire(Role, response.role),
            response.organization_id,
            response.jurisdiction,
        )
