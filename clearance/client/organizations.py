"""``OrganizationService``: organizations, facility clearances, node enrollment tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearance.client.common import (
    Clearance,
    OrganizationKind,
    Page,
    from_wire,
    page_request,
    seconds_of,
    timestamp,
)
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


@dataclass(frozen=True, slots=True)
class FacilityClearance:
    clearance: Clearance
    valid_until: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    kind: OrganizationKind
    country: str
    facility_clearance: FacilityClearance | None
    """None when the organization never held one."""
    created_at: int | None

    @classmethod
    def from_pb(cls, message: pb.Organization) -> Organization:
        facility = None
        if message.HasField("facility_clearance"):
            held = message.facility_clearance
            facility = FacilityClearance(
                Clearance.from_pb(held.clearance),
                seconds_of(held.valid_until, held.HasField("valid_until")),
                held.active,
            )
        return cls(
            id=message.id,
            name=message.name,
            kind=from_wire(OrganizationKind, message.kind),
            country=message.country,
            facility_clearance=facility,
            created_at=seconds_of(message.created_at, message.HasField("created_at")),
        )


@dataclass(frozen=True, slots=True)
class FacilityWithdrawal:
    organization: Organization
    suspended_credentials: int
    """Personnel credentials suspended as a consequence."""


@dataclass(frozen=True, slots=True)
class EnrollmentToken:
    token: str
    """Shown once; the registry keeps only its hash."""
    expires_at: int
    root_fingerprint: str
    """The root fingerprint to give the node operator with the token."""


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    organization_id: str
    name: str
    key_thumbprint: str
    enrolled_at: int | None

    @classmethod
    def from_pb(cls, message: pb.Node) -> Node:
        return cls(
            id=message.id,
            organization_id=message.organization_id,
            name=message.name,
            key_thumbprint=message.key_thumbprint,
            enrolled_at=seconds_of(message.enrolled_at, message.HasField("enrolled_at")),
        )


class Organizations:
    """Calls of ``OrganizationService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.OrganizationServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def create(
        self, name: str, *, kind: OrganizationKind, country: str, idempotency_key: str = ""
    ) -> Organization:
        """Register an organization (``country``: ISO 3166-1 alpha-2)."""
        request = pb.CreateOrganizationRequest(
            name=name,
            kind=common.OrganizationKind.Value(kind.wire_name()),
            country=country,
            idempotency_key=idempotency_key,
        )
        return Organization.from_pb(
            self._stub.CreateOrganization(request, timeout=self._timeout).organization
        )

    def get(self, organization_id: str) -> Organization:
        response = self._stub.GetOrganization(
            pb.GetOrganizationRequest(id=organization_id), timeout=self._timeout
        )
        return Organization.from_pb(response.organization)

    def list(self, *, page_size: int = 0, page_token: str = "") -> Page[Organization]:
        response = self._stub.ListOrganizations(
            pb.ListOrganizationsRequest(page=page_request(page_size, page_token)), timeout=self._timeout
        )
        return Page(tuple(Organization.from_pb(o) for o in response.organizations), response.next_page_token)

    def grant_facility(
        self, organization_id: str, *, level: str, categories: Sequence[str], valid_until: int
    ) -> Organization:
        """Grant or change the organization's facility clearance."""
        request = pb.GrantFacilityClearanceRequest(
            organization_id=organization_id,
            level=level,
            categories=list(categories),
            valid_until=timestamp(valid_until),
        )
        return Organization.from_pb(
            self._stub.GrantFacilityClearance(request, timeout=self._timeout).organization
        )

    def withdraw_facility(self, organization_id: str, *, reason: str) -> FacilityWithdrawal:
        """Withdraw it: the facility credential is revoked, its people's credentials suspended."""
        response = self._stub.WithdrawFacilityClearance(
            pb.WithdrawFacilityClearanceRequest(organization_id=organization_id, reason=reason),
            timeout=self._timeout,
        )
        return FacilityWithdrawal(Organization.from_pb(response.organization), response.suspended_credentials)

    def create_enrollment_token(self, organization_id: str, *, ttl_seconds: int = 0) -> EnrollmentToken:
        """A one-time token with which the organization's node enrolls (default TTL: the server's)."""
        response = self._stub.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(organization_id=organization_id, ttl_seconds=ttl_seconds),
            timeout=self._timeout,
        )
        return EnrollmentToken(response.token, int(response.expires_at.seconds), response.root_fingerprint)

    def list_nodes(
        self, organization_id: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> Page[Node]:
        response = self._stub.ListNodes(
            pb.ListNodesRequest(organization_id=organization_id, page=page_request(page_size, page_token)),
            timeout=self._timeout,
        )
        return Page(tuple(Node.from_pb(n) for n in response.nodes), response.next_page_token)
