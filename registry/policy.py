"""Who may call what: roles, the permission table, the organization scope rule, separation of duties.

Deny by default: an RPC that is not in :data:`PERMISSIONS` is refused for
everyone, and a role not listed for an RPC is refused. The interceptor
(:mod:`registry.auth`) checks the table before any handler runs; domain code
calls :func:`require_scope` once it knows which organization an object
belongs to, because a security officer acts only for their own.

Separation of duties, as the law's own process has it (one office
investigates, another decides, a complaint is heard by someone else). The
table keeps the steps on different roles; the rules below, which the
workflows call once they know an assessment's history, keep them on
different *accounts* even when an account changes role (``ReassignStaff``),
because they compare staff ids, not roles. Each refusal carries its
:class:`~clearance.errors.DenialCode`:

=========================================  =================================  ======================
rule                                       where                              code
=========================================  =================================  ======================
only an investigator records findings;     table (RecordFinding: I;           (role)
only an adjudicator decides                DecideAssessment, Approve: J)
whoever recorded the consent or a finding  :func:`require_not_investigator`   investigator_cannot_decide
of an assessment never decides or          (decide, approve)
approves it
a Top Secret decision takes effect only    :func:`require_second_adjudicator` second_adjudicator_required
when another adjudicator approves it       (approve); :func:`needs_approval`
whoever investigated, decided or approved  :func:`require_outside_decision`   own_decision_appeal
a decision never resolves its appeal       (resolve appeal)
=========================================  =================================  ======================

No single staff account takes a person from enrollment to an issued
credential: issuance needs a favorable decision (checked at issuance), a
decision needs all seven findings (checked at decision), and
:func:`require_not_investigator` refuses the decision to every account that
recorded one of them. So at least two accounts took part: the investigator
who recorded the findings and the adjudicator who decided (three for Top
Secret).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from clearance.errors import DenialCode, PermissionDeniedError


class Role(enum.StrEnum):
    ADMINISTRATOR = "administrator"
    ADJUDICATOR = "adjudicator"
    SECURITY_OFFICER = "security_officer"
    OVERSIGHT = "oversight"
    NODE = "node"
    INVESTIGATOR = "investigator"


@dataclass(frozen=True)
class Caller:
    """An authenticated principal."""

    principal: str
    role: Role
    organization_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.role.value}:{self.principal}"


def principal_of(label: str) -> str:
    """The principal of an audit actor label (``role:principal``, :attr:`Caller.label`)."""
    return label.partition(":")[2] or label


SYSTEM = Caller("system", Role.ADMINISTRATOR)
"""The registry itself (background jobs, init)."""

A, J, S, O, N = Role.ADMINISTRATOR, Role.ADJUDICATOR, Role.SECURITY_OFFICER, Role.OVERSIGHT, Role.NODE  # noqa: E741
I = Role.INVESTIGATOR  # noqa: E741

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
    _P + "StaffService/ReassignStaff": frozenset({A}),
    _P + "StaffService/WhoAmI": frozenset({A, J, S, O, N, I}),
    # People: oversight never sees people, only aggregates
    _P + "PersonnelService/EnrollPerson": frozenset({A, S}),
    _P + "PersonnelService/GetPerson": frozenset({A, J, S, I}),
    _P + "PersonnelService/ListPeople": frozenset({A, J, S, I}),
    _P + "PersonnelService/ReadPersonalData": frozenset({J, I}),
    _P + "PersonnelService/SetAffiliation": frozenset({A, S}),
    # Assessment: the investigator records consent and findings, the adjudicator decides
    _P + "AssessmentService/OpenAssessment": frozenset({I, S}),
    _P + "AssessmentService/RecordConsent": frozenset({I, S}),
    _P + "AssessmentService/WithdrawConsent": frozenset({I, J, S}),
    _P + "AssessmentService/RecordFinding": frozenset({I}),
    _P + "AssessmentService/DecideAssessment": frozenset({J}),
    _P + "AssessmentService/ApproveDecision": frozenset({J}),
    _P + "AssessmentService/GetAssessment": frozenset({I, J, S, O}),
    _P + "AssessmentService/ListAssessments": frozenset({I, J, O}),
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
    _P + "AuditService/GetMonthlyReport": frozenset({A, O}),
    _P + "AuditService/ListIssuanceFacts": frozenset({O}),
    _P + "AuditService/ListCredentialStates": frozenset({O}),
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


# -- separation of duties ----------------------------------------------------------------


def needs_approval(levels: Sequence[str], level: str) -> bool:
    """Whether a decision at ``level`` waits for a second adjudicator: the jurisdiction's highest level."""
    return bool(levels) and level == levels[-1]


def require_not_investigator(caller: Caller, investigators: Collection[str]) -> None:
    """Whoever recorded an assessment's consent or a finding never decides or approves it.

    Raises:
        PermissionDeniedError: ``investigator_cannot_decide``.
    """
    if caller.principal in investigators:
        raise PermissionDeniedError(
            f"{caller.principal} recorded the consent or findings of this assessment; "
            "another adjudicator must decide it",
            DenialCode.INVESTIGATOR_CANNOT_DECIDE,
        )


def require_second_adjudicator(caller: Caller, decided_by: str | None) -> None:
    """A Top Secret decision is approved by another adjudicator than the one who took it.

    Raises:
        PermissionDeniedError: ``second_adjudicator_required``.
    """
    if decided_by is not None and caller.principal == decided_by:
        raise PermissionDeniedError(
            "you took this decision; a second adjudicator must approve it",
            DenialCode.SECOND_ADJUDICATOR_REQUIRED,
        )


def require_outside_decision(caller: Caller, participants: Collection[str]) -> None:
    """An appeal is resolved by someone who took no part in the decision appealed.

    Raises:
        PermissionDeniedError: ``own_decision_appeal``.
    """
    if caller.principal in participants:
        raise PermissionDeniedError(
            f"{caller.principal} investigated, decided or approved the decision under appeal; "
            "another member of the oversight body must resolve it",
            DenialCode.OWN_DECISION_APPEAL,
        )
