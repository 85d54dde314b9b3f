"""A request naming something that does not exist fails with NOT_FOUND, and says what it looked for."""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clearance.keys import SigningKey
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from tests.registry.conftest import YEAR, Registry, fails_with

pytestmark = pytest.mark.database

MISSING = "missing_0123456789"
JWK = json.dumps(SigningKey.generate().public.jwk)

CALLS: dict[str, Callable[[Registry], object]] = {
    "GetOrganization": lambda r: r.admin.organizations.GetOrganization(pb.GetOrganizationRequest(id=MISSING)),
    "GrantFacilityClearance": lambda r: r.admin.organizations.GrantFacilityClearance(
        pb.GrantFacilityClearanceRequest(
            organization_id=MISSING,
            level="SECRET",
            categories=["cyber-threat"],
            valid_until=Timestamp(seconds=r.clock() + YEAR),
        )
    ),
    "WithdrawFacilityClearance": lambda r: r.admin.organizations.WithdrawFacilityClearance(
        pb.WithdrawFacilityClearanceRequest(organization_id=MISSING, reason="inspection")
    ),
    "CreateEnrollmentToken": lambda r: r.admin.organizations.CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(organization_id=MISSING)
    ),
    "CreateStaff": lambda r: r.admin.staff.CreateStaff(
        pb.CreateStaffRequest(
            name="Officer", role=common.ROLE_SECURITY_OFFICER, organization_id=MISSING, public_jwk=JWK
        )
    ),
    "DisableStaff": lambda r: r.admin.staff.DisableStaff(pb.DisableStaffRequest(id=MISSING)),
    "ReassignStaff": lambda r: r.admin.staff.ReassignStaff(
        pb.ReassignStaffRequest(id=MISSING, role=common.ROLE_ADJUDICATOR, public_jwk=JWK)
    ),
    "EnrollPerson": lambda r: r.enroll_person(MISSING),
    "GetPerson": lambda r: r.admin.people.GetPerson(pb.GetPersonRequest(id=MISSING)),
    "ReadPersonalData": lambda r: r.adjudicator.people.ReadPersonalData(
        pb.ReadPersonalDataRequest(person_id=MISSING, purpose="review")
    ),
    "SetAffiliation": lambda r: r.admin.people.SetAffiliation(
        pb.SetAffiliationRequest(person_id=MISSING, reason="resigned")
    ),
    "SetAffiliation to an unknown organization": lambda r: r.admin.people.SetAffiliation(
        pb.SetAffiliationRequest(
            person_id=r.enroll_person(r.new_organization().id).id, organization_id=MISSING, reason="moved"
        )
    ),
    "OpenAssessment": lambda r: r.investigator.assessments.OpenAssessment(
        pb.OpenAssessmentRequest(person_id=MISSING, level="SECRET", categories=["cyber-threat"])
    ),
    "RecordConsent": lambda r: r.investigator.assessments.RecordConsent(
        pb.RecordConsentRequest(assessment_id=MISSING, evidence="form")
    ),
    "WithdrawConsent": lambda r: r.adjudicator.assessments.WithdrawConsent(
        pb.WithdrawConsentRequest(assessment_id=MISSING, reason="withdrawn")
    ),
    "RecordFinding": lambda r: r.investigator.assessments.RecordFinding(
        pb.RecordFindingRequest(
            assessment_id=MISSING,
            item=common.ASSESSMENT_ITEM_DRUG_ABUSE,
            outcome=common.FINDING_OUTCOME_NO_CONCERN,
            summary="none",
        )
    ),
    "DecideAssessment": lambda r: r.adjudicator.assessments.DecideAssessment(
        pb.DecideAssessmentRequest(assessment_id=MISSING, decision=common.DECISION_FAVORABLE, reasons=["ok"])
    ),
    "ApproveDecision": lambda r: r.adjudicator.assessments.ApproveDecision(
        pb.ApproveDecisionRequest(assessment_id=MISSING, approve=True, comment="agreed")
    ),
    "GetAssessment": lambda r: r.adjudicator.assessments.GetAssessment(pb.GetAssessmentRequest(id=MISSING)),
    "GetNotice": lambda r: r.adjudicator.assessments.GetNotice(pb.GetNoticeRequest(assessment_id=MISSING)),
    "FileAppeal": lambda r: r.adjudicator.assessments.FileAppeal(
        pb.FileAppealRequest(assessment_id=MISSING, grounds="wrong")
    ),
    "ResolveAppeal": lambda r: r.oversight.assessments.ResolveAppeal(
        pb.ResolveAppealRequest(appeal_id=MISSING, uphold=True, resolution="set aside")
    ),
    "IssueCredential": lambda r: r.adjudicator.credentials.IssueCredential(
        pb.IssueCredentialRequest(assessment_id=MISSING, holder_jwk=JWK)
    ),
    "BulkIssueCredentials": lambda r: r.admin.credentials.BulkIssueCredentials(
        pb.BulkIssueCredentialsRequest(
            requests=[pb.IssueCredentialRequest(assessment_id=MISSING, holder_jwk=JWK)]
        )
    ),
    "IssueFacilityCredential": lambda r: r.admin.credentials.IssueFacilityCredential(
        pb.IssueFacilityCredentialRequest(organization_id=MISSING, node_id=MISSING)
    ),
    "IssueFacilityCredential for an unknown node": lambda r: r.admin.credentials.IssueFacilityCredential(
        pb.IssueFacilityCredentialRequest(organization_id=r.new_organization().id, node_id=MISSING)
    ),
    "GetCredential": lambda r: r.admin.credentials.GetCredential(pb.GetCredentialRequest(id=MISSING)),
    "SuspendCredential": lambda r: r.adjudicator.credentials.SuspendCredential(
        pb.SuspendCredentialRequest(id=MISSING, reason="inquiry")
    ),
    "ReinstateCredential": lambda r: r.adjudicator.credentials.ReinstateCredential(
        pb.ReinstateCredentialRequest(id=MISSING, reason="closed")
    ),
    "RevokeCredential": lambda r: r.adjudicator.credentials.RevokeCredential(
        pb.RevokeCredentialRequest(id=MISSING, reason="left")
    ),
    "GetStatusList": lambda r: r.public.publication.GetStatusList(
        pb.GetStatusListRequest(uri=f"https://registry.jp.clearance.example/statuslists/{MISSING}")
    ),
    "TerminateAgreement": lambda r: r.admin.federation.TerminateAgreement(
        pb.TerminateAgreementRequest(id=MISSING, reason="ended")
    ),
    "IssueVisitAssurance": lambda r: r.admin.federation.IssueVisitAssurance(
        pb.IssueVisitAssuranceRequest(
            credential_id=MISSING,
            host_jurisdiction="US",
            host_organization="example-research",
            programme="supply-chain-study",
            kind=pb.VISIT_KIND_ONE_TIME,
        )
    ),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_an_unknown_id_is_not_found_and_named(registry: Registry, name: str) -> None:
    details = fails_with(grpc.StatusCode.NOT_FOUND, lambda: CALLS[name](registry))

    assert MISSING in details
