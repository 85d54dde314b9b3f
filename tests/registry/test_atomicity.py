"""A change is all or nothing: when the database fails halfway, nothing of the change remains.

The failure is injected at one statement of the transaction (the first that
starts with a given prefix), as a database that goes away would fail it. The
test then compares every row of every table with what was there before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from sqlalchemy import select

from clearance.keys import SigningKey
from clearance.statuslist import Status
from clearance.v1 import registry_pb2 as pb
from registry.store.models import Base
from tests.registry.conftest import Registry, fails_with

pytestmark = pytest.mark.database

Snapshot = dict[str, list[str]]


def snapshot(registry: Registry) -> Snapshot:
    """Every row of every table (sorted), as text."""
    with registry.ctx.db.engine.connect() as connection:
        return {
            table.name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    return [name for name in before if before[name] != after[name]]


@dataclass(frozen=True)
class Change:
    """An RPC that changes state: what it needs first, and the call itself (repeatable)."""

    prepare: Callable[[Registry], object]
    perform: Callable[[Registry, object], object]


def issue(registry: Registry, assessment_id: object) -> object:
    holder_jwk = json.dumps(HOLDER.public.jwk)
    return registry.adjudicator.credentials.IssueCredential(
        pb.IssueCredentialRequest(
            assessment_id=str(assessment_id), holder_jwk=holder_jwk, idempotency_key="retry-me"
        )
    )


def bulk_issue(registry: Registry, assessment_id: object) -> object:
    return registry.admin.credentials.BulkIssueCredentials(
        pb.BulkIssueCredentialsRequest(
            requests=[
                pb.IssueCredentialRequest(
                    assessment_id=str(assessment_id),
                    holder_jwk=json.dumps(SigningKey.generate().public.jwk),
                    idempotency_key=f"bulk-{n}",
                )
                for n in range(3)
            ]
        )
    )


def revoke(registry: Registry, credential_id: object) -> object:
    return registry.adjudicator.credentials.RevokeCredential(
        pb.RevokeCredentialRequest(id=str(credential_id), reason="left service")
    )


def withdraw_facility(registry: Registry, organization_id: object) -> object:
    return registry.admin.organizations.WithdrawFacilityClearance(
        pb.WithdrawFacilityClearanceRequest(organization_id=str(organization_id), reason="failed inspection")
    )


def enroll_node(registry: Registry, token: object) -> object:
    return registry.public.enrollment.EnrollNode(
        pb.EnrollNodeRequest(token=str(token), name="gateway", public_jwk=json.dumps(HOLDER.public.jwk))
    )


def withdraw_consent(registry: Registry, assessment_id: object) -> object:
    return registry.adjudicator.assessments.WithdrawConsent(
        pb.WithdrawConsentRequest(assessment_id=str(assessment_id), reason="the person withdrew")
    )


def enroll_person(registry: Registry, organization_id: object) -> object:
    return registry.enroll_person(str(organization_id), idempotency_key="hr-1")


HOLDER = SigningKey.generate()


def favorable_assessment(registry: Registry) -> str:
    return registry.cleared_person().assessment.id


def credential_of_a_cleared_organization(registry: Registry) -> str:
    return registry.issue(registry.cleared_person().assessment.id).id


def cleared_organization_with_people(registry: Registry) -> str:
    org = registry.new_organization()
    for _ in range(2):
        registry.issue(registry.cleared_person(organization=org).assessment.id)
    registry.admin.credentials.IssueFacilityCredential(
        pb.IssueFacilityCredentialRequest(organization_id=org.id, node_id=registry.new_node(org.id).id)
    )
    return org.id


def enrollment_token_of_a_cleared_organization(registry: Registry) -> str:
    org = registry.new_organization()
    return registry.admin.organizations.CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(organization_id=org.id)
    ).token


def assessment_with_credentials(registry: Registry) -> str:
    assessment = registry.cleared_person().assessment.id
    registry.issue(assessment)
    return assessment


CHANGES = {
    "issuance": Change(favorable_assessment, issue),
    "bulk issuance": Change(favorable_assessment, bulk_issue),
    "revocation": Change(credential_of_a_cleared_organization, revoke),
    "facility withdrawal": Change(cleared_organization_with_people, withdraw_facility),
    "node enrollment": Change(enrollment_token_of_a_cleared_organization, enroll_node),
    "consent withdrawal": Change(assessment_with_credentials, withdraw_consent),
    "person enrollment": Change(lambda r: r.new_organization().id, enroll_person),
}


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ("issuance", "INSERT INTO credentials"),
        ("issuance", "INSERT INTO idempotency"),
        ("issuance", "INSERT INTO audit_events"),
        ("bulk issuance", "INSERT INTO credentials"),
        ("bulk issuance", "INSERT INTO idempotency"),
        ("bulk issuance", "INSERT INTO audit_events"),
        ("revocation", "UPDATE status_list_chunks"),
        ("revocation", "INSERT INTO status_changes"),
        ("revocation", "INSERT INTO audit_events"),
        ("facility withdrawal", "INSERT INTO status_changes"),
        ("facility withdrawal", "INSERT INTO audit_events"),
        ("node enrollment", "INSERT INTO nodes"),
        ("node enrollment", "INSERT INTO credentials"),
        ("node enrollment", "INSERT INTO audit_events"),
        ("consent withdrawal", "INSERT INTO status_changes"),
        ("consent withdrawal", "INSERT INTO audit_events"),
        ("person enrollment", "INSERT INTO audit_events"),
    ],
)
def test_a_change_that_fails_halfway_leaves_nothing_behind_and_can_be_retried(
    registry: Registry, change: str, failing: str
) -> None:
    target = CHANGES[change].prepare(registry)
    perform = CHANGES[change].perform
    before = snapshot(registry)

    with registry.database_fails_at(failing):
        fails_with(grpc.StatusCode.UNAVAILABLE, lambda: perform(registry, target))

    assert changed_tables(before, snapshot(registry)) == []
    assert registry.chain().intact
    perform(registry, target)  # the same request now goes through
    assert registry.chain().intact


def test_a_retried_issuance_issues_once(registry: Registry) -> None:
    assessment = favorable_assessment(registry)
    with registry.database_fails_at("INSERT INTO audit_events"):
        fails_with(grpc.StatusCode.UNAVAILABLE, lambda: issue(registry, assessment))

    first = issue(registry, assessment)
    again = issue(registry, assessment)

    assert first.credential.id == again.credential.id  # type: ignore[attr-defined]
    assert registry.count("credentials") == 1
    assert registry.count("idempotency", "key = :k", k="retry-me") == 1
    assert [e.action for e in registry.audit_events()].count("credential.issue") == 1


def test_a_revocation_retried_after_a_failure_is_published_once(registry: Registry) -> None:
    credential_id = credential_of_a_cleared_organization(registry)
    record = registry.credential(credential_id)
    [(seq_before,)] = registry.sql("SELECT seq FROM status_lists WHERE id = 1")
    with registry.database_fails_at("INSERT INTO audit_events"):
        fails_with(grpc.StatusCode.UNAVAILABLE, lambda: revoke(registry, credential_id))
    assert registry.published_status(record) == Status.VALID

    revoke(registry, credential_id)

    assert registry.published_status(record) == Status.REVOKED
    [(seq_after,)] = registry.sql("SELECT seq FROM status_lists WHERE id = 1")
    assert seq_after == seq_before + 1
