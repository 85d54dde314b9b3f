"""After issuance: suspend, reinstate, revoke, and the suspensions that follow from their causes."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clearance.statuslist import Status
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from tests.registry.conftest import YEAR, IssuedCredential, Registry, fails_with, refused_naming

pytestmark = pytest.mark.database


def suspend(
    registry: Registry, credential_id: str, reason: str = "under investigation"
) -> pb.CredentialRecord:
    return registry.adjudicator.credentials.SuspendCredential(
        pb.SuspendCredentialRequest(id=credential_id, reason=reason)
    ).credential


def reinstate(
    registry: Registry, credential_id: str, reason: str = "cleared of suspicion"
) -> pb.CredentialRecord:
    return registry.adjudicator.credentials.ReinstateCredential(
        pb.ReinstateCredentialRequest(id=credential_id, reason=reason)
    ).credential


def revoke(
    registry: Registry, credential_id: str, reason: str = "left government service"
) -> pb.CredentialRecord:
    return registry.adjudicator.credentials.RevokeCredential(
        pb.RevokeCredentialRequest(id=credential_id, reason=reason)
    ).credential


@pytest.fixture
def issued(registry: Registry) -> IssuedCredential:
    return registry.issue(registry.cleared_person().assessment.id)


def test_a_suspension_is_published_and_reversible(registry: Registry, issued: IssuedCredential) -> None:
    suspended = suspend(registry, issued.id, "lost laptop")

    assert (suspended.state, suspended.state_reason) == (common.CREDENTIAL_STATE_SUSPENDED, "lost laptop")
    assert registry.published_status(issued) == Status.SUSPENDED

    reinstated = reinstate(registry, issued.id, "laptop found, encrypted")

    assert (reinstated.state, reinstated.state_reason) == (
        common.CREDENTIAL_STATE_VALID,
        "laptop found, encrypted",
    )
    assert registry.published_status(issued) == Status.VALID


def test_a_revocation_is_published_and_final(registry: Registry, issued: IssuedCredential) -> None:
    revoked = revoke(registry, issued.id)

    assert revoked.state == common.CREDENTIAL_STATE_REVOKED
    assert registry.published_status(issued) == Status.REVOKED
    changes: tuple[Callable[[Registry, str], pb.CredentialRecord], ...] = (reinstate, suspend, revoke)
    for change in changes:
        fails_with(
            grpc.StatusCode.FAILED_PRECONDITION,
            lambda change=change: change(registry, issued.id),  # type: ignore[misc]
            mentioning="revoked",
        )
    assert registry.credential(issued.id).state == common.CREDENTIAL_STATE_REVOKED


def test_only_a_suspended_credential_is_reinstated(registry: Registry, issued: IssuedCredential) -> None:
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: reinstate(registry, issued.id),
        mentioning="not suspended",
    )
    suspend(registry, issued.id)
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: suspend(registry, issued.id),
        mentioning="already suspended",
    )


@pytest.mark.parametrize("change", [suspend, reinstate, revoke])
def test_every_change_of_state_states_its_reason(
    registry: Registry, issued: IssuedCredential, change: Callable[..., pb.CredentialRecord]
) -> None:
    refused_naming("reason", lambda: change(registry, issued.id, reason=" "))
    assert registry.credential(issued.id).state == common.CREDENTIAL_STATE_VALID


def test_an_expired_credential_reads_as_expired_and_can_only_be_revoked(
    registry: Registry, issued: IssuedCredential
) -> None:
    registry.clock.advance(issued.record.expires_at.seconds - registry.clock())

    assert registry.credential(issued.id).state == common.CREDENTIAL_STATE_EXPIRED
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: suspend(registry, issued.id), mentioning="expired"
    )
    assert revoke(registry, issued.id).state == common.CREDENTIAL_STATE_REVOKED


def test_withdrawing_the_employers_facility_clearance_suspends_its_people_until_it_is_granted_again(
    registry: Registry,
) -> None:
    org = registry.new_organization()
    issued = registry.issue(registry.cleared_person(organization=org).assessment.id)
    facility = registry.admin.credentials.IssueFacilityCredential(
        pb.IssueFacilityCredentialRequest(organization_id=org.id, node_id=registry.new_node(org.id).id)
    ).credential

    withdrawn = registry.admin.organizations.WithdrawFacilityClearance(
        pb.WithdrawFacilityClearanceRequest(organization_id=org.id, reason="failed inspection")
    )

    assert withdrawn.suspended_credentials == 1
    record = registry.credential(issued.id)
    assert (record.state, record.state_reason) == (common.CREDENTIAL_STATE_SUSPENDED, "failed inspection")
    assert registry.published_status(issued) == Status.SUSPENDED
    assert registry.credential(facility.id).state == common.CREDENTIAL_STATE_REVOKED
    assert registry.published_status(registry.credential(facility.id)) == Status.REVOKED
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: reinstate(registry, issued.id),
        mentioning="facility clearance",
    )

    registry.admin.organizations.GrantFacilityClearance(
        pb.GrantFacilityClearanceRequest(
            organization_id=org.id,
            level="SECRET",
            categories=["cyber-threat", "joint-research"],
            valid_until=Timestamp(seconds=registry.clock() + YEAR),
        )
    )
    assert reinstate(registry, issued.id).state == common.CREDENTIAL_STATE_VALID
    assert registry.published_status(issued) == Status.VALID


def test_ending_the_affiliation_suspends_the_persons_credentials_until_it_is_restored(
    registry: Registry,
) -> None:
    cleared = registry.cleared_person()
    issued = registry.issue(cleared.assessment.id)
    officer = registry.security_officer(cleared.organization.id)

    ended = officer.people.SetAffiliation(
        pb.SetAffiliationRequest(person_id=cleared.person.id, reason="resigned")
    )

    assert ended.suspended_credentials == 1
    assert ended.person.organization_id == ""
    assert registry.published_status(issued) == Status.SUSPENDED
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: reinstate(registry, issued.id), mentioning="affiliated"
    )

    registry.admin.people.SetAffiliation(
        pb.SetAffiliationRequest(
            person_id=cleared.person.id, organization_id=cleared.organization.id, reason="rehired"
        )
    )
    assert reinstate(registry, issued.id).state == common.CREDENTIAL_STATE_VALID


def test_moving_to_another_employer_suspends_too(registry: Registry) -> None:
    cleared = registry.cleared_person()
    issued = registry.issue(cleared.assessment.id)
    other = registry.new_organization()

    moved = registry.admin.people.SetAffiliation(
        pb.SetAffiliationRequest(person_id=cleared.person.id, organization_id=other.id, reason="transferred")
    )

    assert moved.suspended_credentials == 1
    assert registry.published_status(issued) == Status.SUSPENDED
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: reinstate(registry, issued.id), mentioning="affiliated"
    )


def test_a_security_officer_can_only_end_an_affiliation_with_their_organization(registry: Registry) -> None:
    cleared = registry.cleared_person()
    officer = registry.security_officer(cleared.organization.id)
    other = registry.new_organization()

    refused_naming(
        "organization_id",
        lambda: officer.people.SetAffiliation(
            pb.SetAffiliationRequest(person_id=cleared.person.id, organization_id=other.id, reason="poached")
        ),
    )


def test_a_suspension_for_withdrawn_consent_is_not_lifted_by_staff(registry: Registry) -> None:
    cleared = registry.cleared_person()
    issued = registry.issue(cleared.assessment.id)
    registry.adjudicator.assessments.WithdrawConsent(
        pb.WithdrawConsentRequest(assessment_id=cleared.assessment.id, reason="the person withdrew")
    )

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: reinstate(registry, issued.id), mentioning="consent"
    )


def test_a_security_officer_suspends_but_does_not_reinstate_or_revoke(registry: Registry) -> None:
    cleared = registry.cleared_person()
    issued = registry.issue(cleared.assessment.id)
    officer = registry.security_officer(cleared.organization.id)

    suspended = officer.credentials.SuspendCredential(
        pb.SuspendCredentialRequest(id=issued.id, reason="incident")
    )

    assert suspended.credential.state == common.CREDENTIAL_STATE_SUSPENDED
    for call in (officer.credentials.ReinstateCredential, officer.credentials.RevokeCredential):
        fails_with(
            grpc.StatusCode.PERMISSION_DENIED,
            lambda call=call: call(pb.ReinstateCredentialRequest(id=issued.id, reason="x")),  # type: ignore[misc]
        )


def test_credentials_are_listed_by_person_and_state(registry: Registry) -> None:
    cleared = registry.cleared_person()
    kept, revoked = registry.issue(cleared.assessment.id), registry.issue(cleared.assessment.id)
    revoke(registry, revoked.id)
    credentials = registry.adjudicator.credentials

    by_person = credentials.ListCredentials(
        pb.ListCredentialsRequest(person_id=cleared.person.id)
    ).credentials
    valid = credentials.ListCredentials(
        pb.ListCredentialsRequest(state=common.CREDENTIAL_STATE_VALID)
    ).credentials

    assert sorted(c.id for c in by_person) == sorted([kept.id, revoked.id])
    assert [c.id for c in valid] == [kept.id]
