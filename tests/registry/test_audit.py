"""The audit log: one event per change, written with the change, chained so that tampering shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise

import grpc
import pytest

from clearance.v1 import registry_pb2 as pb
from registry.store.audit import event_hash
from tests.registry.conftest import Client, Principal, Registry, fails_with
from tests.registry.rpc_catalog import (
    EXPECTED,
    PUBLIC,
    REQUESTS,
    ROLES,
    World,
    call,
    registry_methods,
)

pytestmark = pytest.mark.database

AUDITED: dict[str, list[str]] = {
    "CreateOrganization": ["organization.create"],
    "GrantFacilityClearance": ["facility.grant"],
    "WithdrawFacilityClearance": ["facility.withdraw"],
    "CreateEnrollmentToken": ["node.enrollment_token"],
    "CreateStaff": ["staff.create"],
    "DisableStaff": ["staff.disable"],
    "ReassignStaff": ["staff.reassign"],
    "EnrollPerson": ["person.enroll"],
    "ReadPersonalData": ["person.read_personal_data"],  # a read, and audited: it decrypts
    "SetAffiliation": ["person.affiliation"],
    "OpenAssessment": ["assessment.open"],
    "RecordConsent": ["assessment.consent"],
    "WithdrawConsent": ["assessment.withdraw_consent"],
    "RecordFinding": ["assessment.finding"],
    "DecideAssessment": ["assessment.decide"],
    "ApproveDecision": ["assessment.approve"],
    "FileAppeal": ["appeal.file"],
    "ResolveAppeal": ["appeal.resolve"],
    "IssueCredential": ["credential.issue"],
    "BulkIssueCredentials": ["credential.bulk_issue"],  # one event naming every credential
    "IssueFacilityCredential": ["credential.issue_facility"],
    "SuspendCredential": ["credential.suspend"],
    "ReinstateCredential": ["credential.reinstate"],
    "RevokeCredential": ["credential.revoke"],
    # Documented: a node of a cleared organization receives its facility credential at enrollment.
    "EnrollNode": ["node.enroll", "credential.issue_facility"],
    # Documented: the bundle listing the agreements in force is republished at once.
    "ImportAgreement": ["agreement.import", "bundle.publish"],
    "TerminateAgreement": ["agreement.terminate", "bundle.publish"],
    "IssueVisitAssurance": ["visit.assure"],
}
"""What each state-changing RPC appends to the log; every other RPC appends nothing."""


def caller_for(world: World, service: str, method: str) -> Client:
    """The public for a public RPC; otherwise a staff member or node of the first role allowed."""
    allowed = EXPECTED[service][method]
    if allowed is PUBLIC:
        return world.registry.public
    return world.caller(next(role for role in ROLES if role in allowed))


@pytest.mark.parametrize(
    ("service", "method", "streaming"),
    registry_methods(),
    ids=[f"{service}.{method}" for service, method, _ in registry_methods()],
)
def test_every_rpc_appends_exactly_the_events_of_its_changes(
    registry: Registry, service: str, method: str, streaming: bool
) -> None:
    world = World(registry)
    client = caller_for(world, service, method)
    request = REQUESTS[method](world)
    before = registry.chain().events_checked

    code = call(client, service, method, streaming, request)

    assert code.name == "OK"
    appended = registry.audit_events(after=before)
    assert [e.action for e in appended] == AUDITED.get(method, [])
    if method in AUDITED and isinstance(client, Principal):
        assert appended[0].actor == f"{client.role}:{client.id}"
    assert registry.chain().intact


def test_the_audit_table_names_only_rpcs_the_registry_declares() -> None:
    assert set(AUDITED) <= {m for _, m, _ in registry_methods()}


def test_a_refused_change_leaves_no_event(registry: Registry) -> None:
    cleared = registry.cleared_person()
    before = registry.chain().events_checked

    registry.adjudicator.assessments.WithdrawConsent(
        pb.WithdrawConsentRequest(assessment_id=cleared.assessment.id, reason="withdrawn")
    )
    fails_with(grpc.StatusCode.FAILED_PRECONDITION, lambda: registry.issue(cleared.assessment.id))

    assert [e.action for e in registry.audit_events(after=before)] == ["assessment.withdraw_consent"]


def test_an_audit_event_names_who_did_what_to_which_object_and_never_a_name(registry: Registry) -> None:
    cleared = registry.cleared_person()
    issued = registry.issue(cleared.assessment.id)

    events = registry.audit_events()

    [issue] = [e for e in events if e.action == "credential.issue"]
    assert (issue.actor, issue.object_type, issue.object_id) == (
        f"adjudicator:{registry.adjudicator.id}",
        "credential",
        issued.id,
    )
    assert json.loads(issue.details_json)["assessment_id"] == cleared.assessment.id
    assert all("Hanako" not in e.details_json and "Yamada" not in e.details_json for e in events)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert all(e.previous_hash == p.hash for p, e in pairwise(events))


def test_oversight_verifies_an_intact_chain(registry: Registry) -> None:
    oversight = registry.oversight
    registry.issue(registry.cleared_person().assessment.id)
    events = registry.audit_events()

    report = oversight.audit.VerifyAuditChain(pb.VerifyAuditChainRequest())

    assert report.intact
    assert (report.events_checked, report.broken_at, report.problem) == (len(events), 0, "")
    assert report.head_hash == events[-1].hash


# -- tampering -------------------------------------------------------------------------


def edit_details(registry: Registry, seq: int) -> None:
    registry.sql("UPDATE audit_events SET details = :d WHERE seq = :s", d='{"name":"Evil KK"}', s=seq)


def edit_and_rehash(registry: Registry, seq: int) -> None:
    """The careful forger: edits an event and recomputes its hash (the next event still points at the old one)."""
    [row] = registry.sql(
        "SELECT at, actor, action, object_type, object_id, prev_hash FROM audit_events WHERE seq = :s", s=seq
    )
    details = '{"name":"Evil KK"}'
    digest = event_hash(
        seq=seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        details=details,
        prev_hash=row.prev_hash,
    )
    registry.sql("UPDATE audit_events SET details = :d, hash = :h WHERE seq = :s", d=details, h=digest, s=seq)


def delete(registry: Registry, seq: int) -> None:
    registry.sql("DELETE FROM audit_events WHERE seq = :s", s=seq)


COLUMNS = ("at", "actor", "action", "object_type", "object_id", "details", "prev_hash", "hash")
SELECT_EVENT = f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE seq = :seq"  # noqa: S608
OVERWRITE_EVENT = f"UPDATE audit_events SET {', '.join(f'{c} = :{c}' for c in COLUMNS)} WHERE seq = :seq"  # noqa: S608


def swap_with_next(registry: Registry, seq: int) -> None:
    """Two events trade places: each keeps its content and hash, under the other's number."""
    [first] = registry.sql(SELECT_EVENT, seq=seq)
    [second] = registry.sql(SELECT_EVENT, seq=seq + 1)
    registry.sql(OVERWRITE_EVENT, seq=seq, **second._asdict())
    registry.sql(OVERWRITE_EVENT, seq=seq + 1, **first._asdict())


@pytest.mark.parametrize(
    ("tamper", "at", "problem"),
    [
        (edit_details, "middle", "edited"),
        (edit_and_rehash, "after middle", "does not follow"),
        (delete, "middle", "missing"),
        (swap_with_next, "middle", "does not follow"),
        (delete, "last", "removed"),
    ],
    ids=["edit", "edit and rehash", "delete one", "swap two", "delete the last"],
)
def test_tampering_with_the_log_is_found_where_it_happened(
    registry: Registry, tamper: Callable[[Registry, int], None], at: str, problem: str
) -> None:
    oversight = registry.oversight
    for _ in range(4):
        registry.new_organization(facility_level=None)
    last = registry.chain().events_checked
    middle = last // 2

    tamper(registry, last if at == "last" else middle)

    report = oversight.audit.VerifyAuditChain(pb.VerifyAuditChainRequest())
    assert not report.intact
    assert report.broken_at == {"middle": middle, "after middle": middle + 1, "last": last}[at]
    assert problem in report.problem
