"""Who may call what: every RPC of every registry service, for every kind of caller.

The expected matrix (:data:`tests.registry.rpc_catalog.EXPECTED`) is written
by hand; the last test of the matrix compares it with the policy table the
registry enforces, so a change to either shows up as a disagreement to resolve.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from clearance.access import TokenSource, sign_access_token
from clearance.keys import SigningKey
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from registry.policy import PERMISSIONS, PUBLIC_METHODS
from tests.registry.conftest import Client, Registry, fails_with, rpc_error
from tests.registry.rpc_catalog import (
    EXPECTED,
    PUBLIC,
    REQUESTS,
    ROLES,
    A,
    J,
    World,
    call,
    registry_methods,
)

pytestmark = pytest.mark.database


def expected_for(service: str, method: str, role: str | None) -> str:
    """'served' (authentication and role pass), 'unauthenticated' or 'denied'."""
    allowed = EXPECTED[service][method]
    if allowed is PUBLIC:
        return "served"
    if role is None:
        return "unauthenticated"
    return "served" if role in allowed else "denied"


def outcome(code: grpc.StatusCode) -> str:
    return {
        grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
        grpc.StatusCode.PERMISSION_DENIED: "denied",
        grpc.StatusCode.UNIMPLEMENTED: "not served at all",
    }.get(code, "served")


def mismatches(world: World, client: Client, role: str | None) -> list[str]:
    """Every RPC whose outcome for ``client`` differs from the matrix."""
    problems = []
    for service, method, streaming in registry_methods():
        request = REQUESTS[method](world)
        code = call(client, service, method, streaming, request)
        want = expected_for(service, method, role)
        if outcome(code) != want:
            problems.append(f"{service}/{method}: expected {want}, got {code.name}")
    return problems


# -- the matrix itself -----------------------------------------------------------------


def test_the_matrix_covers_every_rpc_of_every_registry_service() -> None:
    declared = {(service, method) for service, method, _ in registry_methods()}

    assert declared == {(s, m) for s, methods in EXPECTED.items() for m in methods}
    assert {m for _, m in declared} == set(REQUESTS)


def test_the_matrix_agrees_with_the_policy_table() -> None:
    """Drift between what the tests expect and what registry.policy enforces is resolved on purpose."""
    public = {
        f"/clearance.v1.{s}/{m}" for s, methods in EXPECTED.items() for m, r in methods.items() if r is PUBLIC
    }
    table = {
        f"/clearance.v1.{s}/{m}": roles
        for s, methods in EXPECTED.items()
        for m, roles in methods.items()
        if roles is not PUBLIC
    }

    assert public == {m for m in PUBLIC_METHODS if m.startswith("/clearance.v1.")}
    assert table == {method: frozenset(r.value for r in roles) for method, roles in PERMISSIONS.items()}


# -- callers that are not who they claim -------------------------------------------------------


def borrowed_identity(registry: Registry) -> Callable[[], str]:
    """An adjudicator's key signing a token that names the administrator."""
    adjudicator = registry.new_staff(J)
    return lambda: sign_access_token(
        adjudicator.key, principal=registry.admin.id, audience=registry.audience, now=registry.clock()
    )


def disabled_staff_tokens(registry: Registry) -> Callable[[], str]:
    """Tokens of an administrator disabled before ever calling."""
    staff = registry.new_staff(A)
    registry.admin.staff.DisableStaff(pb.DisableStaffRequest(id=staff.id))
    return TokenSource(staff.key, principal=staff.id, audience=registry.audience, clock=registry.clock)


BAD_CREDENTIALS: dict[str, Callable[[Registry], Callable[[], str] | None]] = {
    "no token": lambda r: None,
    "garbage": lambda r: lambda: "garbage",
    "unknown key": lambda r: TokenSource(
        SigningKey.generate(), principal=r.admin.id, audience=r.audience, clock=r.clock
    ),
    "expired": lambda r: (
        lambda: sign_access_token(
            r.first_admin.key, principal=r.admin.id, audience=r.audience, now=r.clock() - 301, lifetime=300
        )
    ),
    "another registry's audience": lambda r: TokenSource(
        r.first_admin.key, principal=r.admin.id, audience="https://registry.us.example", clock=r.clock
    ),
    "borrowed identity": borrowed_identity,
    "disabled staff": disabled_staff_tokens,
}


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
def test_a_caller_without_a_valid_credential_reaches_only_public_methods(
    registry: Registry, credential: str
) -> None:
    world = World(registry)
    client = Client(registry.channel(BAD_CREDENTIALS[credential](registry)))

    assert mismatches(world, client, None) == []


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_denied_exactly_what_it_may_not_do(registry: Registry, role: str) -> None:
    world = World(registry)

    assert mismatches(world, world.caller(role), role) == []


# -- beyond the role: whose objects, and what oversight sees -------------------------------------


def test_a_security_officer_acting_on_another_organizations_people_is_denied(registry: Registry) -> None:
    world = World(registry)
    outsider = registry.security_officer(world.other_org.id)
    person = world.person()
    credential = world.credential()
    calls: dict[str, Callable[[], object]] = {
        "GetOrganization": lambda: outsider.organizations.GetOrganization(
            pb.GetOrganizationRequest(id=world.org.id)
        ),
        "CreateEnrollmentToken": lambda: outsider.organizations.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(organization_id=world.org.id)
        ),
        "ListNodes": lambda: outsider.organizations.ListNodes(
            pb.ListNodesRequest(organization_id=world.org.id)
        ),
        "EnrollPerson": lambda: outsider.people.EnrollPerson(REQUESTS["EnrollPerson"](world)),  # type: ignore[arg-type]
        "GetPerson": lambda: outsider.people.GetPerson(pb.GetPersonRequest(id=person.id)),
        "ListPeople": lambda: outsider.people.ListPeople(pb.ListPeopleRequest(organization_id=world.org.id)),
        "SetAffiliation": lambda: outsider.people.SetAffiliation(
            pb.SetAffiliationRequest(person_id=person.id, reason="poached")
        ),
        "OpenAssessment": lambda: outsider.assessments.OpenAssessment(
            pb.OpenAssessmentRequest(person_id=person.id, level="SECRET", categories=["cyber-threat"])
        ),
        "RecordConsent": lambda: outsider.assessments.RecordConsent(REQUESTS["RecordConsent"](world)),  # type: ignore[arg-type]
        "WithdrawConsent": lambda: outsider.assessments.WithdrawConsent(
            pb.WithdrawConsentRequest(assessment_id=world.favorable.id, reason="withdrawn")
        ),
        "GetAssessment": lambda: outsider.assessments.GetAssessment(
            pb.GetAssessmentRequest(id=world.favorable.id)
        ),
        "GetNotice": lambda: outsider.assessments.GetNotice(
            pb.GetNoticeRequest(assessment_id=world.favorable.id)
        ),
        "FileAppeal": lambda: outsider.assessments.FileAppeal(
            pb.FileAppealRequest(assessment_id=world.unfavorable.id, grounds="x")
        ),
        "GetCredential": lambda: outsider.credentials.GetCredential(pb.GetCredentialRequest(id=credential)),
        "ListCredentials": lambda: outsider.credentials.ListCredentials(
            pb.ListCredentialsRequest(organization_id=world.org.id)
        ),
        "SuspendCredential": lambda: outsider.credentials.SuspendCredential(
            pb.SuspendCredentialRequest(id=credential, reason="sabotage")
        ),
    }

    codes = {name: rpc_error(attempt).code() for name, attempt in calls.items()}

    assert codes == dict.fromkeys(calls, grpc.StatusCode.PERMISSION_DENIED)
    assert registry.credential(credential).state == common.CREDENTIAL_STATE_VALID
    assert (
        registry.adjudicator.people.GetPerson(pb.GetPersonRequest(id=person.id)).person.organization_id
        == world.org.id
    )
    assert (
        registry.adjudicator.assessments.GetAssessment(
            pb.GetAssessmentRequest(id=world.favorable.id)
        ).assessment.state
        == common.ASSESSMENT_STATE_FAVORABLE
    )


def test_a_security_officer_listing_another_organizations_credentials_by_person_sees_none(
    registry: Registry,
) -> None:
    world = World(registry)
    outsider = registry.security_officer(world.other_org.id)
    credential = world.credential()
    person_id = registry.credential(credential).person_id

    listed = outsider.credentials.ListCredentials(pb.ListCredentialsRequest(person_id=person_id)).credentials

    assert list(listed) == []


def test_oversight_never_reads_personal_data_or_a_file_not_under_appeal(registry: Registry) -> None:
    world = World(registry)
    oversight = registry.oversight
    person = world.person()

    fails_with(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: oversight.people.ReadPersonalData(
            pb.ReadPersonalDataRequest(person_id=person.id, purpose="curious")
        ),
    )
    fails_with(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: oversight.people.GetPerson(pb.GetPersonRequest(id=person.id)),
    )
    fails_with(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: oversight.assessments.GetAssessment(pb.GetAssessmentRequest(id=world.favorable.id)),
        mentioning="under appeal",
    )
    fails_with(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: oversight.assessments.GetNotice(pb.GetNoticeRequest(assessment_id=world.unfavorable.id)),
        mentioning="under appeal",
    )
    under_appeal = world.appeal.assessment_id
    assert (
        len(oversight.assessments.GetAssessment(pb.GetAssessmentRequest(id=under_appeal)).assessment.findings)
        == 7
    )
    assert oversight.assessments.GetNotice(pb.GetNoticeRequest(assessment_id=under_appeal)).notice.reasons


def test_oversight_statistics_are_counts_only(registry: Registry) -> None:
    world = World(registry)
    credential = world.credential()

    counts = registry.oversight.audit.GetStatistics(pb.GetStatisticsRequest()).counts

    assert (counts["people"], counts["credentials.personnel.valid"]) == (1, 1)
    identifiers = (world.org.id, world.favorable.person_id, world.favorable.id, credential)
    assert not [key for key in counts for identifier in identifiers if identifier in key]
