"""Separation of duties: one account investigates, another decides, a third approves Top Secret,
and nobody who took part in a decision resolves its appeal, whatever role their account holds now."""

from __future__ import annotations

import json

import grpc
import pytest

from clearance.errors import DenialCode
from clearance.keys import SigningKey
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from tests.registry.conftest import Principal, Registry, denied_by, fails_with

pytestmark = pytest.mark.database


def decide(
    by: Principal, assessment_id: str, verdict: common.Decision.ValueType = common.DECISION_FAVORABLE
) -> pb.DecideAssessmentResponse:
    return by.assessments.DecideAssessment(
        pb.DecideAssessmentRequest(assessment_id=assessment_id, decision=verdict, reasons=["weighed"])
    )


def approve(by: Principal, assessment_id: str, *, yes: bool = True) -> pb.ApproveDecisionResponse:
    return by.assessments.ApproveDecision(
        pb.ApproveDecisionRequest(assessment_id=assessment_id, approve=yes, comment="reviewed the file")
    )


def investigated(registry: Registry, *, level: str = "SECRET") -> pb.Assessment:
    """An assessment with consent and all seven findings, recorded by the registry's investigator."""
    org = registry.new_organization(facility_level=level)
    assessment = registry.consented_assessment(registry.enroll_person(org.id).id, level=level)
    return registry.record_findings(assessment.id)


def test_an_investigator_records_and_never_decides_an_adjudicator_decides_and_never_records(
    registry: Registry,
) -> None:
    assessment = registry.consented_assessment(registry.enroll_person(registry.new_organization().id).id)

    fails_with(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: registry.adjudicator.assessments.RecordFinding(
            pb.RecordFindingRequest(
                assessment_id=assessment.id,
                item=common.ASSESSMENT_ITEM_DRUG_ABUSE,
                outcome=common.FINDING_OUTCOME_NO_CONCERN,
                summary="none",
            )
        ),
    )
    registry.record_findings(assessment.id)
    fails_with(grpc.StatusCode.PERMISSION_DENIED, lambda: decide(registry.investigator, assessment.id))
    decided = decide(registry.adjudicator, assessment.id).assessment
    assert (decided.consent_by, decided.decided_by) == (registry.investigator.id, registry.adjudicator.id)
    assert {f.recorded_by for f in decided.findings} == {registry.investigator.id}


def test_an_investigator_made_adjudicator_cannot_decide_what_they_investigated(registry: Registry) -> None:
    assessment = investigated(registry)
    promoted = registry.reassign(registry.investigator, "adjudicator")

    denied_by(DenialCode.INVESTIGATOR_CANNOT_DECIDE, lambda: decide(promoted, assessment.id))

    assert decide(registry.adjudicator, assessment.id).assessment.state == common.ASSESSMENT_STATE_FAVORABLE


def test_whoever_recorded_a_replaced_finding_still_investigated(registry: Registry) -> None:
    assessment = investigated(registry)
    colleague = registry.new_staff("investigator")
    for item in (common.ASSESSMENT_ITEM_DRUG_ABUSE, common.ASSESSMENT_ITEM_FAMILY_AND_COHABITANTS):
        colleague.assessments.RecordFinding(
            pb.RecordFindingRequest(
                assessment_id=assessment.id,
                item=item,
                outcome=common.FINDING_OUTCOME_NO_CONCERN,
                summary="checked again",
            )
        )
    promoted = registry.reassign(colleague, "adjudicator")

    denied_by(DenialCode.INVESTIGATOR_CANNOT_DECIDE, lambda: decide(promoted, assessment.id))


def test_the_officer_who_recorded_the_consent_cannot_decide_once_an_adjudicator(registry: Registry) -> None:
    org = registry.new_organization()
    officer = registry.security_officer(org.id)
    opened = officer.assessments.OpenAssessment(
        pb.OpenAssessmentRequest(
            person_id=registry.enroll_person(org.id).id, level="SECRET", categories=["cyber-threat"]
        )
    ).assessment
    officer.assessments.RecordConsent(
        pb.RecordConsentRequest(assessment_id=opened.id, evidence="signed form")
    )
    registry.record_findings(opened.id)
    moved = registry.reassign(officer, "adjudicator")

    denied_by(DenialCode.INVESTIGATOR_CANNOT_DECIDE, lambda: decide(moved, opened.id))


def test_a_top_secret_decision_waits_for_a_second_adjudicator_before_it_takes_effect(
    registry: Registry,
) -> None:
    assessment = investigated(registry, level="TOP_SECRET")

    pending = decide(registry.adjudicator, assessment.id)

    assert pending.assessment.state == common.ASSESSMENT_STATE_AWAITING_APPROVAL
    assert not pending.HasField("notice")
    assert not pending.assessment.HasField("valid_until")
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: registry.issue(assessment.id), mentioning="favorable"
    )
    fails_with(
        grpc.StatusCode.NOT_FOUND,
        lambda: registry.adjudicator.assessments.GetNotice(pb.GetNoticeRequest(assessment_id=assessment.id)),
    )
    registry.clock.advance(3600)

    approved = approve(registry.second_adjudicator, assessment.id)

    assert approved.assessment.state == common.ASSESSMENT_STATE_FAVORABLE
    assert approved.assessment.approved_by == registry.second_adjudicator.id
    assert approved.assessment.valid_until.seconds > registry.clock()
    assert approved.notice.decision == common.DECISION_FAVORABLE
    assert registry.issue(assessment.id).record.clearance.level == "TOP_SECRET"
    [event] = registry.audit_events()[-2:-1]
    assert (event.action, event.actor) == (
        "assessment.approve",
        f"adjudicator:{registry.second_adjudicator.id}",
    )


def test_the_decider_cannot_approve_their_own_top_secret_decision(registry: Registry) -> None:
    assessment = investigated(registry, level="TOP_SECRET")
    decide(registry.adjudicator, assessment.id)

    denied_by(DenialCode.SECOND_ADJUDICATOR_REQUIRED, lambda: approve(registry.adjudicator, assessment.id))


def test_an_investigator_of_the_assessment_cannot_be_its_second_adjudicator(registry: Registry) -> None:
    assessment = investigated(registry, level="TOP_SECRET")
    decide(registry.adjudicator, assessment.id)
    promoted = registry.reassign(registry.investigator, "adjudicator")

    denied_by(DenialCode.INVESTIGATOR_CANNOT_DECIDE, lambda: approve(promoted, assessment.id))


def test_a_decision_sent_back_leaves_the_assessment_in_progress_for_a_new_decision(
    registry: Registry,
) -> None:
    assessment = investigated(registry, level="TOP_SECRET")
    decide(registry.adjudicator, assessment.id, common.DECISION_UNFAVORABLE)

    sent_back = approve(registry.second_adjudicator, assessment.id, yes=False)

    assert sent_back.assessment.state == common.ASSESSMENT_STATE_IN_PROGRESS
    assert sent_back.assessment.decision == common.DECISION_UNSPECIFIED
    assert not sent_back.HasField("notice")
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: approve(registry.second_adjudicator, assessment.id),
        mentioning="no decision awaits approval",
    )
    again = decide(registry.adjudicator, assessment.id)
    assert again.assessment.state == common.ASSESSMENT_STATE_AWAITING_APPROVAL


def test_below_the_highest_level_one_adjudicator_decides(registry: Registry) -> None:
    assessment = investigated(registry, level="SECRET")

    decided = decide(registry.adjudicator, assessment.id)

    assert decided.assessment.state == common.ASSESSMENT_STATE_FAVORABLE
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: approve(registry.second_adjudicator, assessment.id)
    )


def appealed(registry: Registry) -> pb.Appeal:
    assessment = investigated(registry)
    decide(registry.adjudicator, assessment.id, common.DECISION_UNFAVORABLE)
    return registry.adjudicator.assessments.FileAppeal(
        pb.FileAppealRequest(assessment_id=assessment.id, grounds="the record is wrong")
    ).appeal


@pytest.mark.parametrize("who", ["decider", "investigator"])
def test_nobody_who_took_part_in_a_decision_resolves_its_appeal(registry: Registry, who: str) -> None:
    appeal = appealed(registry)
    account = registry.adjudicator if who == "decider" else registry.investigator
    now_oversight = registry.reassign(account, "oversight")
    resolve = pb.ResolveAppealRequest(appeal_id=appeal.id, uphold=True, resolution="set aside")

    denied_by(DenialCode.OWN_DECISION_APPEAL, lambda: now_oversight.assessments.ResolveAppeal(resolve))

    assert registry.oversight.assessments.ResolveAppeal(resolve).appeal.state == common.APPEAL_STATE_UPHELD


def test_the_second_adjudicator_of_a_decision_does_not_resolve_its_appeal(registry: Registry) -> None:
    assessment = investigated(registry, level="TOP_SECRET")
    decide(registry.adjudicator, assessment.id, common.DECISION_UNFAVORABLE)
    approve(registry.second_adjudicator, assessment.id)
    appeal = registry.adjudicator.assessments.FileAppeal(
        pb.FileAppealRequest(assessment_id=assessment.id, grounds="the record is wrong")
    ).appeal
    now_oversight = registry.reassign(registry.second_adjudicator, "oversight")

    denied_by(
        DenialCode.OWN_DECISION_APPEAL,
        lambda: now_oversight.assessments.ResolveAppeal(
            pb.ResolveAppealRequest(appeal_id=appeal.id, uphold=False, resolution="stands")
        ),
    )


def test_no_single_account_takes_a_person_from_enrollment_to_a_credential(registry: Registry) -> None:
    """One account, moved from post to post, does every step it may: the decision is where it stops."""
    org = registry.new_organization()
    account = registry.security_officer(org.id)
    person = registry.enroll_person(org.id, by=account)
    opened = account.assessments.OpenAssessment(
        pb.OpenAssessmentRequest(person_id=person.id, level="SECRET", categories=["cyber-threat"])
    ).assessment
    account.assessments.RecordConsent(
        pb.RecordConsentRequest(assessment_id=opened.id, evidence="signed form")
    )
    account = registry.reassign(account, "investigator")
    registry.record_findings(opened.id)  # the findings need not be theirs: the consent was
    account = registry.reassign(account, "adjudicator")

    denied_by(DenialCode.INVESTIGATOR_CANNOT_DECIDE, lambda: decide(account, opened.id))
    fails_with(grpc.StatusCode.FAILED_PRECONDITION, lambda: registry.issue(opened.id, by=account))


def test_a_reassigned_account_keeps_its_id_and_its_old_key_stops_working(registry: Registry) -> None:
    investigator = registry.new_staff("investigator")

    moved = registry.reassign(investigator, "oversight")

    assert moved.staff.WhoAmI(pb.WhoAmIRequest()).role == common.ROLE_OVERSIGHT
    assert moved.id == investigator.id
    fails_with(grpc.StatusCode.UNAUTHENTICATED, lambda: investigator.staff.WhoAmI(pb.WhoAmIRequest()))
    [event] = [e for e in registry.audit_events() if e.action == "staff.reassign"]
    assert event.object_id == investigator.id


def test_an_administrator_reassigns_neither_themselves_nor_a_disabled_account(registry: Registry) -> None:
    gone = registry.new_staff("adjudicator")
    registry.admin.staff.DisableStaff(pb.DisableStaffRequest(id=gone.id))

    def reassign(staff_id: str) -> pb.ReassignStaffResponse:
        return registry.admin.staff.ReassignStaff(
            pb.ReassignStaffRequest(
                id=staff_id,
                role=common.ROLE_OVERSIGHT,
                public_jwk=json.dumps(SigningKey.generate().public.jwk),
            )
        )

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: reassign(registry.admin.id), mentioning="own account"
    )
    fails_with(grpc.StatusCode.FAILED_PRECONDITION, lambda: reassign(gone.id), mentioning="disabled")
