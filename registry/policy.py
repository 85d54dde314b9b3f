"""Who may call what: roles, the permission table, and the organization scope rule.

Deny by default: an RPC that is not in :data:`PERMISSIONS` is refused for
everyone, and a role not listed for an RPC is refused. The interceptor
(:mod:`registry.auth`) checks the table before any handler runs; domain code
calls :func:`require_scope` once it knows which organization an object
belongs to, because a security officer acts only for their own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from clearance.errors import PermissionDeniedError


class Role(enum.StrEnum):
    ADMINISTRATOR = "administrator"
    ADJUDICATOR = "adjudicator"
    SECURITY_OFFICER = "security_officer"
    OVERSIGHT = "oversight"
    NODE = "node"


@dataclass(frozen=True)
class Caller:
    """An authenticated principal."""

    principal: str
    role: Role
    organization_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.role.value}:{self.principal}"


SYSTEM = Caller("system", Role.ADMINISTRATOR)
"""The registry itself (background jobs, init)."""

A, J, S, O, N = Role.ADMINISTRATOR, Role.ADJUDICATOR, Role.SECURITY_OFFICER, Role.OVERSIGHT, Role.NODE  # noqa: E741

PUBLIC_METHODS = frozenset(
    {
        "/clearance.v1.PublicationService/GetTrustBundle",
        "/clearance.v1.PublicationService/GetStatusList",
        "/clearance.v1.PublicationService/GetJwks",
        "/clearance.v1.PublicationService/GetRootHistory",
        "/clearance.v1.PublicationService/Watch",
        # Authenticated by the one-time token it carries.
        "/clearance.v1.EnrollmentService/EnrollNode",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.health.v1.Health/List",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)
"""Signed public documents (any CDN may serve them), health and reflection."""

_P = "/clearance.v1."
PERMISSIONS: dict[str, frozenset[Role]] = {
    # Organizations
    _P + "OrganizationService/CreateOrganization": frozenset({A}),
    _P + "OrganizationService/GetOrganization": frozenset({A, J, S, O}),
    _P + "OrganizationService/ListOrganizations": frozenset({A, J, O}),
    _P + "OrganizationService/GrantFacilityClearance": frozenset({A}),
    _P + "OrganizationService/WithdrawFacilityClearance": frozenset({A}),
    _P + "OrganizationService/CreateEnrollmentToken": frozenset({A, S}),
    _P + "OrganizationService/ListNodes": frozenset({A, S}),
    # Staff
    _P + "StaffService/CreateStaff": frozenset({A}),
    _P + "StaffService/ListStaff": frozenset({A, O}),
    _P + "StaffService/DisableStaff": frozenset({A}),
    _P + "StaffService/WhoAmI": frozenset({A, J, S, O, N}),
    # People: oversight never sees people, only aggregates
    _P + "PersonnelService/EnrollPerson": frozenset({A, S}),
    _P + "PersonnelService/GetPerson": frozenset({A, J, S}),
    _P + "PersonnelService/ListPeople": frozenset({A, J, S}),
    _P + "PersonnelService/ReadPersonalData": frozenset({J}),
    _P + "PersonnelService/SetAffiliation": frozenset({A, S}),
    # Assessment
    _P + "AssessmentService/OpenAssessment": frozenset({J, S}),
    _P + "AssessmentService/RecordConsent": frozenset({J, S}),
    _P + "AssessmentService/WithdrawConsent": frozenset({J, S}),
    _P + "AssessmentService/RecordFinding": frozenset({J}),
    _P + "AssessmentService/DecideAssessment": frozenset({J}),
    _P + "AssessmentService/GetAssessment": frozenset({J, S, O}),
    _P + "AssessmentService/ListAssessments": frozenset({J, O}),
    _P + "AssessmentService/GetNotice": frozenset({J, S, O}),
    _P + "AssessmentService/FileAppeal": frozenset({J, S}),
    _P + "AssessmentService/ResolveAppeal": frozenset({O}),
    _P + "AssessmentService/ListAppeals": frozenset({J, O}),
    # Credentials
    _P + "CredentialService/IssueCredential": frozenset({A, J}),
    _P + "CredentialService/BulkIssueCredentials": frozenset({A}),
    _P + "CredentialService/IssueFacilityCredential": frozenset({A}),
    _P + "CredentialService/GetCredential": frozenset({A, J, S}),
    _P + "CredentialService/ListCredentials": frozenset({A, J, S}),
    _P + "CredentialService/SuspendCredential": frozenset({A, J, S}),
    _P + "CredentialService/ReinstateCredential": frozenset({A, J}),
    _P + "CredentialService/RevokeCredential": frozenset({A, J}),
    # Audit and statistics
    _P + "AuditService/ListAuditEvents": frozenset({A, O}),
    _P + "AuditService/VerifyAuditChain": frozenset({A, O}),
    _P + "AuditService/GetStatistics": frozenset({A, O}),
    # Federation
    _P + "FederationService/ImportAgreement": frozenset({A}),
    _P + "FederationService/ListAgreements": frozenset({A, O}),
    _P + "FederationService/TerminateAgreement": frozenset({A}),
    _P + "FederationService/IssueVisitAssurance": frozenset({A, J}),
}


def allowed(method: str, caller: Caller) -> bool:
    """Whether ``caller`` may call ``method`` at all (organization scope comes later)."""
    roles = PERMISSIONS.get(method)
    return roles is not None and caller.role in roles


def require_scope(caller: Caller, organization_id: str | None) -> None:
    """A security officer may act only on objects of their own organization.

    Raises:
        PermissionDeniedError: an officer reaching outside their organization.
    """
    if caller.role is Role.SECURITY_OFFICER and (
        organization_id is None or organization_id != caller.organization_id
    ):
        raise PermissionDeniedError("a security officer acts only for their own organization")


def require_role(caller: Caller, *roles: Role) -> None:
    """For operations whose rule depends on the arguments, not only the method.

    Raises:
        PermissionDeniedError: the caller's role is not among ``roles``.
    """
    if caller.role not in roles:
        raise PermissionDeniedError(f"{caller.role.value} may not do this")


def scoped_listing(caller: Caller, organization_id: str) -> str:
    """The organization a listing is limited to: a security officer sees only their own.

    An officer who names no organization gets their own; an empty result for
    anyone else means every organization.

    Raises:
        PermissionDeniedError: an officer naming another organization.
    """
    if caller.role is Role.SECURITY_OFFICER:
        organization_id = organization_id or (caller.organization_id or "")
        require_scope(caller, organization_id)
    return organization_id
