"""The aptitude assessment: consent first, the seven items and nothing else, reasons, notice, appeal, expiry."""

from __future__ import annotations

import grpc
import pytest

from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from tests.registry.conftest import (
    ALL_ITEMS,
    DAY,
    YEAR,
    Registry,
    RegistryFactory,
    fails_with,
    refused_naming,
)

pytestmark = pytest.mark.database

TEN_YEARS = 10 * 365 * DAY + 2 * DAY
"""The registry's default clearance validity (leap days included)."""


def opened(registry: Registry) -> pb.Assessment:
    person = registry.enroll_person(registry.new_organization().id)
    return registry.investigator.assessments.OpenAssessment(
        pb.OpenAssessmentRequest(person_id=person.id, level="SECRET", categories=["cyber-threat"])
    ).assessment


def finding(
    assessment_id: str,
    item: common.AssessmentItem.ValueType = common.ASSESSMENT_ITEM_DRUG_ABUSE,
    **fields: object,
) -> pb.RecordFindingRequest:
    values: dict[str, object] = {
        "outcome": common.FINDING_OUTCOME_NO_CONCERN,
        "summary": "no record",
        **fields,
    }
    return pb.RecordFindingRequest(assessment_id=assessment_id, item=item, **values)  # type: ignore[arg-type]


def decision(
    assessment_id: str,
    verdict: common.Decision.ValueType = common.DECISION_FAVORABLE,
    reasons: tuple[str, ...] = ("sound",),
) -> pb.DecideAssessmentRequest:
    return pb.DecideAssessmentRequest(assessment_id=assessment_id, decision=verdict, reasons=list(reasons))


def test_an_assessment_waits_for_consent_before_anything_is_recorded(registry: Registry) -> None:
    assessment = opened(registry)

    assert assessment.state == common.ASSESSMENT_STATE_AWAITING_CONSENT
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.investigator.assessments.RecordFinding(finding(assessment.id)),
        mentioning="consent",
    )
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.adjudicator.assessments.DecideAssessment(decision(assessment.id)),
        mentioning="consent",
    )
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: registry.issue(assessment.id), mentioning="consent"
    )
    assert registry.count("findings") == 0


def test_consent_is_recorded_with_its_evidence(registry: Registry) -> None:
    assessment = opened(registry)
    assessments = registry.investigator.assessments

    refused_naming(
        "evidence", lambda: assessments.RecordConsent(pb.RecordConsentRequest(assessment_id=assessment.id))
    )
    consented = assessments.RecordConsent(
        pb.RecordConsentRequest(assessment_id=assessment.id, evidence="signed form 2026-09-20")
    ).assessment

    assert consented.state == common.ASSESSMENT_STATE_IN_PROGRESS
    assert consented.consent_at.seconds == registry.clock()
    assert consented.consent_by == registry.investigator.id
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: assessments.RecordConsent(
            pb.RecordConsentRequest(assessment_id=assessment.id, evidence="again")
        ),
    )


def test_a_person_has_one_open_assessment_at_a_time(registry: Registry) -> None:
    assessment = opened(registry)

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.investigator.assessments.OpenAssessment(
            pb.OpenAssessmentRequest(
                person_id=assessment.person_id, level="SECRET", categories=["cyber-threat"]
            )
        ),
        mentioning="already has an open assessment",
    )


@pytest.mark.parametrize("item", [common.ASSESSMENT_ITEM_UNSPECIFIED, 8, 99])
def test_no_finding_outside_the_seven_items_can_be_recorded(
    registry: Registry, item: common.AssessmentItem.ValueType
) -> None:
    assessment = registry.consented_assessment(registry.enroll_person(registry.new_organization().id).id)

    refused_naming(
        "item", lambda: registry.investigator.assessments.RecordFinding(finding(assessment.id, item))
    )
    assert registry.count("findings") == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"outcome": common.FINDING_OUTCOME_UNSPECIFIED}, "outcome"), ({"summary": "   "}, "summary")],
)
def test_a_finding_needs_an_outcome_and_a_summary(
    registry: Registry, fields: dict[str, object], field: str
) -> None:
    assessment = registry.consented_assessment(registry.enroll_person(registry.new_organization().id).id)

    refused_naming(
        field,
        lambda: registry.investigator.assessments.RecordFinding(
            finding(assessment.id, **fields)  # type: ignore[arg-type]  # hostile values on purpose
        ),
    )


def test_recording_an_item_again_replaces_its_finding(registry: Registry) -> None:
    assessment = registry.consented_assessment(registry.enroll_person(registry.new_organization().id).id)
    assessments = registry.investigator.assessments
    assessments.RecordFinding(
        finding(assessment.id, outcome=common.FINDING_OUTCOME_CONCERN, summary="first look")
    )

    updated = assessments.RecordFinding(
        finding(assessment.id, outcome=common.FINDING_OUTCOME_MITIGATED, summary="treatment completed")
    ).assessment

    assert [(f.item, f.outcome, f.summary) for f in updated.findings] == [
        (common.ASSESSMENT_ITEM_DRUG_ABUSE, common.FINDING_OUTCOME_MITIGATED, "treatment completed")
    ]


def test_a_decision_needs_all_seven_findings(registry: Registry) -> None:
    assessment = registry.consented_assessment(registry.enroll_person(registry.new_organization().id).id)
    registry.record_findings(assessment.id, items=ALL_ITEMS[:-1])

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.adjudicator.assessments.DecideAssessment(decision(assessment.id)),
        mentioning="financial_situation",
    )
    registry.record_findings(assessment.id, items=ALL_ITEMS[-1:])
    decided = registry.adjudicator.assessments.DecideAssessment(decision(assessment.id)).assessment
    assert decided.state == common.ASSESSMENT_STATE_FAVORABLE


@pytest.mark.parametrize(
    ("verdict", "reasons", "field"),
    [
        (common.DECISION_FAVORABLE, (), "reasons"),
        (common.DECISION_UNFAVORABLE, ("",), "reasons"),
        (common.DECISION_UNSPECIFIED, ("sound",), "decision"),
    ],
)
def test_a_decision_states_its_reasons(
    registry: Registry, verdict: common.Decision.ValueType, reasons: tuple[str, ...], field: str
) -> None:
    assessment = registry.consented_assessment(registry.enroll_person(registry.new_organization().id).id)
    registry.record_findings(assessment.id)

    refused_naming(
        field,
        lambda: registry.adjudicator.assessments.DecideAssessment(decision(assessment.id, verdict, reasons)),
    )


def test_a_favorable_decision_is_valid_for_ten_years_and_noticed_to_the_person(registry: Registry) -> None:
    person = registry.enroll_person(registry.new_organization().id)

    decided = registry.decided_assessment(person.id, decision=common.DECISION_FAVORABLE)

    assessment, notice = decided.assessment, decided.notice
    assert assessment.state == common.ASSESSMENT_STATE_FAVORABLE
    assert assessment.decided_at.seconds == registry.clock()
    assert assessment.valid_until.seconds == registry.clock() + TEN_YEARS
    assert len(assessment.findings) == 7
    assert (notice.decision, list(notice.reasons)) == (common.DECISION_FAVORABLE, ["weighed all seven items"])
    assert not notice.HasField("appeal_deadline")
    assert (
        registry.adjudicator.assessments.GetNotice(pb.GetNoticeRequest(assessment_id=assessment.id)).notice
        == notice
    )


def test_an_unfavorable_decision_is_noticed_with_its_reasons_and_an_appeal_deadline(
    registry: Registry,
) -> None:
    person = registry.enroll_person(registry.new_organization().id)

    decided = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE)

    notice = decided.notice
    assert decided.assessment.state == common.ASSESSMENT_STATE_UNFAVORABLE
    assert not decided.assessment.HasField("valid_until")
    assert notice.decision == common.DECISION_UNFAVORABLE
    assert list(notice.reasons) == ["weighed all seven items"]
    assert notice.appeal_deadline.seconds == registry.clock() + 60 * DAY
    assert "appeal" in notice.appeal_instructions


def test_a_notice_exists_only_once_decided(registry: Registry) -> None:
    assessment = opened(registry)

    fails_with(
        grpc.StatusCode.NOT_FOUND,
        lambda: registry.adjudicator.assessments.GetNotice(pb.GetNoticeRequest(assessment_id=assessment.id)),
    )


def test_a_security_officer_sees_state_and_decision_but_never_findings_or_reasons(registry: Registry) -> None:
    org = registry.new_organization()
    officer = registry.security_officer(org.id)
    person = registry.enroll_person(org.id)
    decided = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE)

    seen = officer.assessments.GetAssessment(pb.GetAssessmentRequest(id=decided.assessment.id)).assessment

    assert (seen.state, seen.decision) == (common.ASSESSMENT_STATE_UNFAVORABLE, common.DECISION_UNFAVORABLE)
    assert not seen.findings
    assert not seen.reasons


def test_withdrawing_consent_stops_an_open_assessment(registry: Registry) -> None:
    assessment = registry.consented_assessment(registry.enroll_person(registry.new_organization().id).id)
    assessments = registry.investigator.assessments

    refused_naming(
        "reason", lambda: assessments.WithdrawConsent(pb.WithdrawConsentRequest(assessment_id=assessment.id))
    )
    withdrawn = assessments.WithdrawConsent(
        pb.WithdrawConsentRequest(assessment_id=assessment.id, reason="the person withdrew in writing")
    )

    assert withdrawn.assessment.state == common.ASSESSMENT_STATE_WITHDRAWN
    assert withdrawn.suspended_credentials == 0
    fails_with(grpc.StatusCode.FAILED_PRECONDITION, lambda: assessments.RecordFinding(finding(assessment.id)))
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.adjudicator.assessments.DecideAssessment(decision(assessment.id)),
    )
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: assessments.WithdrawConsent(
            pb.WithdrawConsentRequest(assessment_id=assessment.id, reason="again")
        ),
    )


def test_withdrawing_consent_after_a_favorable_decision_suspends_the_credentials(registry: Registry) -> None:
    cleared = registry.cleared_person()
    first, second = registry.issue(cleared.assessment.id), registry.issue(cleared.assessment.id)

    withdrawn = registry.adjudicator.assessments.WithdrawConsent(
        pb.WithdrawConsentRequest(assessment_id=cleared.assessment.id, reason="the person withdrew")
    )

    assert withdrawn.suspended_credentials == 2
    for issued in (first, second):
        assert registry.credential(issued.id).state == common.CREDENTIAL_STATE_SUSPENDED
        assert registry.published_status(issued) == 2
    fails_with(grpc.StatusCode.FAILED_PRECONDITION, lambda: registry.issue(cleared.assessment.id))


def test_a_clearance_reads_as_reassessment_due_in_its_last_half_year_then_expires(registry: Registry) -> None:
    cleared = registry.cleared_person()
    valid_until = cleared.assessment.valid_until.seconds

    def read() -> pb.Assessment:
        return registry.adjudicator.assessments.GetAssessment(
            pb.GetAssessmentRequest(id=cleared.assessment.id)
        ).assessment

    registry.clock.advance(valid_until - 180 * DAY - registry.clock() - 1)
    assert read().state == common.ASSESSMENT_STATE_FAVORABLE

    registry.clock.advance(1)
    assert read().state == common.ASSESSMENT_STATE_REASSESSMENT_DUE
    due = registry.adjudicator.assessments.ListAssessments(
        pb.ListAssessmentsRequest(state=common.ASSESSMENT_STATE_REASSESSMENT_DUE)
    ).assessments
    assert [a.id for a in due] == [cleared.assessment.id]

    registry.clock.advance(valid_until - registry.clock())
    assert read().state == common.ASSESSMENT_STATE_EXPIRED
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(cleared.assessment.id),
        mentioning="expired",
    )


def test_lists_of_assessments_carry_no_findings_or_reasons(registry: Registry) -> None:
    registry.cleared_person()

    [listed] = registry.oversight.assessments.ListAssessments(pb.ListAssessmentsRequest()).assessments

    assert listed.state == common.ASSESSMENT_STATE_FAVORABLE
    assert not listed.findings
    assert not listed.reasons


# -- appeals ---------------------------------------------------------------------------


def appealed(registry: Registry) -> pb.Appeal:
    """An unfavorable decision appealed by the person's security officer."""
    org = registry.new_organization()
    officer = registry.security_officer(org.id)
    person = registry.enroll_person(org.id)
    decided = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE)
    appeal = officer.assessments.FileAppeal(
        pb.FileAppealRequest(assessment_id=decided.assessment.id, grounds="the debt was repaid in 2024")
    ).appeal
    return appeal


def test_a_security_officer_appeals_and_oversight_sees_the_file_under_appeal(registry: Registry) -> None:
    appeal = appealed(registry)

    assert appeal.state == common.APPEAL_STATE_OPEN
    assert appeal.grounds == "the debt was repaid in 2024"
    listed = registry.oversight.assessments.ListAppeals(
        pb.ListAppealsRequest(state=common.APPEAL_STATE_OPEN)
    ).appeals
    assert [a.id for a in listed] == [appeal.id]
    seen = registry.oversight.assessments.GetAssessment(
        pb.GetAssessmentRequest(id=appeal.assessment_id)
    ).assessment
    assert len(seen.findings) == 7
    assert list(seen.reasons) == ["weighed all seven items"]


def test_an_upheld_appeal_sets_the_decision_aside_and_reopens_the_assessment(registry: Registry) -> None:
    appeal = appealed(registry)

    resolved = registry.oversight.assessments.ResolveAppeal(
        pb.ResolveAppealRequest(
            appeal_id=appeal.id, uphold=True, resolution="the finding on finances was wrong"
        )
    )

    assert resolved.appeal.state == common.APPEAL_STATE_UPHELD
    assert resolved.appeal.resolved_by == registry.oversight.id
    assert resolved.assessment.state == common.ASSESSMENT_STATE_IN_PROGRESS
    assert resolved.assessment.decision == common.DECISION_UNSPECIFIED
    registry.record_findings(appeal.assessment_id, items=(common.ASSESSMENT_ITEM_FINANCIAL_SITUATION,))
    redecided = registry.adjudicator.assessments.DecideAssessment(decision(appeal.assessment_id)).assessment
    assert redecided.state == common.ASSESSMENT_STATE_FAVORABLE
    assert registry.issue(appeal.assessment_id).record.state == common.CREDENTIAL_STATE_VALID


def test_a_dismissed_appeal_leaves_the_decision_and_is_resolved_once(registry: Registry) -> None:
    appeal = appealed(registry)
    resolve = pb.ResolveAppealRequest(appeal_id=appeal.id, uphold=False, resolution="the findings stand")

    resolved = registry.oversight.assessments.ResolveAppeal(resolve)

    assert resolved.appeal.state == common.APPEAL_STATE_DISMISSED
    assert resolved.assessment.state == common.ASSESSMENT_STATE_UNFAVORABLE
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: registry.oversight.assessments.ResolveAppeal(resolve)
    )


def test_a_resolution_states_its_grounds(registry: Registry) -> None:
    appeal = appealed(registry)

    refused_naming(
        "resolution",
        lambda: registry.oversight.assessments.ResolveAppeal(
            pb.ResolveAppealRequest(appeal_id=appeal.id, uphold=True)
        ),
    )


def test_one_appeal_at_a_time_and_only_against_an_unfavorable_decision(registry: Registry) -> None:
    appeal = appealed(registry)
    cleared = registry.cleared_person()

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.adjudicator.assessments.FileAppeal(
            pb.FileAppealRequest(assessment_id=appeal.assessment_id, grounds="again")
        ),
        mentioning="already open",
    )
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.adjudicator.assessments.FileAppeal(
            pb.FileAppealRequest(assessment_id=cleared.assessment.id, grounds="why not")
        ),
        mentioning="unfavorable",
    )


def test_an_appeal_after_the_deadline_is_refused(registry: Registry) -> None:
    person = registry.enroll_person(registry.new_organization().id)
    decided = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE)
    registry.clock.advance(60 * DAY + 1)

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.adjudicator.assessments.FileAppeal(
            pb.FileAppealRequest(assessment_id=decided.assessment.id, grounds="late")
        ),
        mentioning="deadline",
    )


def test_an_appeal_states_its_grounds(registry: Registry) -> None:
    person = registry.enroll_person(registry.new_organization().id)
    decided = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE)

    refused_naming(
        "grounds",
        lambda: registry.adjudicator.assessments.FileAppeal(
            pb.FileAppealRequest(assessment_id=decided.assessment.id)
        ),
    )


def test_the_validity_of_a_clearance_is_a_registry_setting(make_registry: RegistryFactory) -> None:
    registry = make_registry(clearance_validity=2 * YEAR)
    person = registry.enroll_person(registry.new_organization().id)

    decided = registry.decided_assessment(person.id)

    assert decided.assessment.valid_until.seconds == registry.clock() + 2 * YEAR
