"""Every RPC of the registry API: who may call it, and a request that exercises it.

Shared by the access-control matrix and the audit tests, so both walk the
same list, taken from the service descriptors: an RPC added to the protocol
without an entry here fails them.

:data:`EXPECTED` is written out by hand from the design (who does what,
DESIGN.md), not derived from :data:`registry.policy.PERMISSIONS`: a test built
from the table it checks could not fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from clearance.agreement import Agreement, Party
from clearance.keys import SigningKey
from clearance.statistics.report import Month
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from tests.registry.conftest import DAY, YEAR, Client, Principal, Registry

A, J, S, O, N = "administrator", "adjudicator", "security_officer", "oversight", "node"  # noqa: E741
I = "investigator"  # noqa: E741
PUBLIC = frozenset({"anyone"})
"""Needs no bearer token: signed public documents, and enrollment (its one-time token is in the request)."""

EXPECTED: dict[str, dict[str, frozenset[str]]] = {
    "OrganizationService": {
        "CreateOrganization": frozenset({A}),
        "GetOrganization": frozenset({A, J, S, O}),
        "ListOrganizations": frozenset({A, J, O}),
        "GrantFacilityClearance": frozenset({A}),
        "WithdrawFacilityClearance": frozenset({A}),
        "CreateEnrollmentToken": frozenset({A, S}),
        "ListNodes": frozenset({A, S}),
    },
    "StaffService": {
        "CreateStaff": frozenset({A}),
        "ListStaff": frozenset({A, O}),
        "DisableStaff": frozenset({A}),
        "ReassignStaff": frozenset({A}),
        "WhoAmI": frozenset({A, J, S, O, N, I}),
    },
    "PersonnelService": {  # oversight never sees people
        "EnrollPerson": frozenset({A, S}),
        "GetPerson": frozenset({A, J, S, I}),
        "ListPeople": frozenset({A, J, S, I}),
        "ReadPersonalData": frozenset({J, I}),
        "SetAffiliation": frozenset({A, S}),
    },
    "AssessmentService": {  # the investigator records, the adjudicator decides (DESIGN.md)
        "OpenAssessment": frozenset({I, S}),
        "RecordConsent": frozenset({I, S}),
        "WithdrawConsent": frozenset({I, J, S}),
        "RecordFinding": frozenset({I}),
        "DecideAssessment": frozenset({J}),
        "ApproveDecision": frozenset({J}),
        "GetAssessment": frozenset({I, J, S, O}),
        "ListAssessments": frozenset({I, J, O}),
        "GetNotice": frozenset({J, S, O}),
        "FileAppeal": frozenset({J, S}),
        "ResolveAppeal": frozenset({O}),
        "ListAppeals": frozenset({J, O}),
    },
    "CredentialService": {
        "IssueCredential": frozenset({A, J}),
        "BulkIssueCredentials": frozenset({A}),
        "IssueFacilityCredential": frozenset({A}),
        "GetCredential": frozenset({A, J, S}),
        "ListCredentials": frozenset({A, J, S}),
        "SuspendCredential": frozenset({A, J, S}),
        "ReinstateCredential": frozenset({A, J}),
        "RevokeCredential": frozenset({A, J}),
    },
    "PublicationService": {
        "GetTrustBundle": PUBLIC,
        "GetStatusList": PUBLIC,
        "GetJwks": PUBLIC,
        "GetRootHistory": PUBLIC,
        "Watch": PUBLIC,
    },
    "EnrollmentService": {"EnrollNode": PUBLIC},
    "AuditService": {
        "ListAuditEvents": frozenset({A, O}),
        "VerifyAuditChain": frozenset({A, O}),
        "GetStatistics": frozenset({A, O}),
        "GetMonthlyReport": frozenset({A, O}),
        "ListIssuanceFacts": frozenset({O}),
        "ListCredentialStates": frozenset({O}),
    },
    "FederationService": {
        "ImportAgreement": frozenset({A}),
        "ListAgreements": frozenset({A, O}),
        "TerminateAgreement": frozenset({A}),
        "IssueVisitAssurance": frozenset({A, J}),
    },
}
ROLES = (A, J, S, O, N, I)


def registry_methods() -> list[tuple[str, str, bool]]:
    """(service, method, server-streaming) for every RPC the registry API declares."""
    return [
        (service.name, method.name, method.server_streaming)
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


@dataclass
class World:
    """One cleared organization with people at every step, and a caller of each role.

    Each request below targets objects of this organization, so a security
    officer's calls pass the organization-scope rule and only the role decides.
    """

    registry: Registry

    @cached_property
    def org(self) -> pb.Organization:
        return self.registry.new_organization()

    @cached_property
    def other_org(self) -> pb.Organization:
        return self.registry.new_organization()

    def person(self) -> pb.Person:
        return self.registry.enroll_person(self.org.id)

    @cached_property
    def favorable(self) -> pb.Assessment:
        return self.registry.decided_assessment(self.person().id).assessment

    @cached_property
    def unfavorable(self) -> pb.Assessment:
        return self.registry.decided_assessment(
            self.person().id, decision=common.DECISION_UNFAVORABLE
        ).assessment

    @cached_property
    def appeal(self) -> pb.Appeal:
        return self.registry.adjudicator.assessments.FileAppeal(
            pb.FileAppealRequest(assessment_id=self.unfavorable.id, grounds="the record is wrong")
        ).appeal

    def credential(self) -> str:
        return self.registry.issue(self.favorable.id).id

    def suspended_credential(self) -> str:
        credential = self.credential()
        self.registry.admin.credentials.SuspendCredential(
            pb.SuspendCredentialRequest(id=credential, reason="check")
        )
        return credential

    @cached_property
    def node(self) -> Principal:
        return self.registry.new_node(self.org.id)

    def enrollment_token(self) -> str:
        return self.registry.admin.organizations.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(organization_id=self.org.id)
        ).token

    def caller(self, role: str) -> Principal:
        if role == N:
            return self.node
        if role == S:
            return self.registry.security_officer(self.org.id)
        if role == A:
            return self.registry.admin
        return self.registry.new_staff(role)

    def in_progress(self) -> pb.Assessment:
        return self.registry.consented_assessment(self.person().id)

    def awaiting_approval(self) -> pb.Assessment:
        """A Top Secret decision taken by the registry's adjudicator, waiting for a second one."""
        top = self.registry.new_organization(facility_level="TOP_SECRET")
        assessment = self.registry.consented_assessment(
            self.registry.enroll_person(top.id).id, level="TOP_SECRET"
        )
        self.registry.record_findings(assessment.id)
        return self.registry.adjudicator.assessments.DecideAssessment(
            pb.DecideAssessmentRequest(
                assessment_id=assessment.id, decision=common.DECISION_FAVORABLE, reasons=["sound"]
            )
        ).assessment

    def agreement_document(self, partner: str) -> str:
        """A new agreement with the registry of ``partner``, signed by both roots."""
        registry = self.registry
        root = registry.ctx.keys.root
        assert root is not None
        partner_root = SigningKey.generate()
        now = registry.clock()
        agreement = Agreement.propose(
            root,
            agreement_id=registry.unique(f"JP-{partner}").replace(" ", "-"),
            parties=(
                Party("JP", root.public, registry.audience),
                Party(partner, partner_root.public, f"https://registry.{partner.lower()}.example"),
            ),
            levels=[("SECRET", "SECRET")],
            categories={"JP": ["cyber-threat"], partner: ["cyber-threat"]},
            issued_at=now,
            not_before=now - DAY,
            expires_at=now + YEAR,
        ).countersign(partner_root)
        return json.dumps(agreement.to_json())

    @cached_property
    def agreement(self) -> pb.AgreementRecord:
        """An agreement with the United States in force (its endpoint does not answer)."""
        return self.registry.admin.federation.ImportAgreement(
            pb.ImportAgreementRequest(document=self.agreement_document("US"), partner_endpoint="127.0.0.1:9")
        ).agreement


def fresh_jwk() -> str:
    return json.dumps(SigningKey.generate().public.jwk)


REQUESTS: dict[str, Callable[[World], Message]] = {
    "CreateOrganization": lambda w: pb.CreateOrganizationRequest(
        name=w.registry.unique("New KK"), kind=common.ORGANIZATION_KIND_COMPANY, country="JP"
    ),
    "GetOrganization": lambda w: pb.GetOrganizationRequest(id=w.org.id),
    "ListOrganizations": lambda w: pb.ListOrganizationsRequest(),
    "GrantFacilityClearance": lambda w: pb.GrantFacilityClearanceRequest(
        organization_id=w.other_org.id,
        level="SECRET",
        categories=["cyber-threat"],
        valid_until=Timestamp(seconds=w.registry.clock() + YEAR),
    ),
    "WithdrawFacilityClearance": lambda w: pb.WithdrawFacilityClearanceRequest(
        organization_id=w.other_org.id, reason="inspection failed"
    ),
    "CreateEnrollmentToken": lambda w: pb.CreateEnrollmentTokenRequest(organization_id=w.org.id),
    "ListNodes": lambda w: pb.ListNodesRequest(organization_id=w.org.id),
    "CreateStaff": lambda w: pb.CreateStaffRequest(
        name="New adjudicator", role=common.ROLE_ADJUDICATOR, public_jwk=fresh_jwk()
    ),
    "ListStaff": lambda w: pb.ListStaffRequest(),
    "DisableStaff": lambda w: pb.DisableStaffRequest(id=w.registry.new_staff(J).id),
    "ReassignStaff": lambda w: pb.ReassignStaffRequest(
        id=w.registry.new_staff(I).id, role=common.ROLE_ADJUDICATOR, public_jwk=fresh_jwk()
    ),
    "WhoAmI": lambda w: pb.WhoAmIRequest(),
    "EnrollPerson": lambda w: pb.EnrollPersonRequest(
        organization_id=w.org.id,
        personal_data=pb.PersonalData(
            given_name="Jiro", family_name="Sato", birthdate="1990-01-01", nationality="JP"
        ),
    ),
    "GetPerson": lambda w: pb.GetPersonRequest(id=w.person().id),
    "ListPeople": lambda w: pb.ListPeopleRequest(organization_id=w.org.id),
    "ReadPersonalData": lambda w: pb.ReadPersonalDataRequest(person_id=w.person().id, purpose="review"),
    "SetAffiliation": lambda w: pb.SetAffiliationRequest(person_id=w.person().id, reason="resigned"),
    "OpenAssessment": lambda w: pb.OpenAssessmentRequest(
        person_id=w.person().id, level="SECRET", categories=["cyber-threat"]
    ),
    "RecordConsent": lambda w: pb.RecordConsentRequest(
        assessment_id=w.registry.investigator.assessments.OpenAssessment(
            pb.OpenAssessmentRequest(person_id=w.person().id, level="SECRET", categories=["cyber-threat"])
        ).assessment.id,
        evidence="signed form",
    ),
    "WithdrawConsent": lambda w: pb.WithdrawConsentRequest(
        assessment_id=w.in_progress().id, reason="withdrawn"
    ),
    "RecordFinding": lambda w: pb.RecordFindingRequest(
        assessment_id=w.in_progress().id,
        item=common.ASSESSMENT_ITEM_DRUG_ABUSE,
        outcome=common.FINDING_OUTCOME_NO_CONCERN,
        summary="none",
    ),
    "DecideAssessment": lambda w: pb.DecideAssessmentRequest(
        assessment_id=w.registry.record_findings(w.in_progress().id).id,
        decision=common.DECISION_FAVORABLE,
        reasons=["sound"],
    ),
    "ApproveDecision": lambda w: pb.ApproveDecisionRequest(
        assessment_id=w.awaiting_approval().id, approve=True, comment="agreed"
    ),
    "GetAssessment": lambda w: pb.GetAssessmentRequest(id=w.appeal.assessment_id),
    "ListAssessments": lambda w: pb.ListAssessmentsRequest(),
    "GetNotice": lambda w: pb.GetNoticeRequest(assessment_id=w.appeal.assessment_id),
    "FileAppeal": lambda w: pb.FileAppealRequest(
        assessment_id=w.registry.decided_assessment(
            w.person().id, decision=common.DECISION_UNFAVORABLE
        ).assessment.id,
        grounds="new evidence",
    ),
    "ResolveAppeal": lambda w: pb.ResolveAppealRequest(
        appeal_id=w.appeal.id, uphold=False, resolution="stands"
    ),
    "ListAppeals": lambda w: pb.ListAppealsRequest(),
    "IssueCredential": lambda w: pb.IssueCredentialRequest(
        assessment_id=w.favorable.id, holder_jwk=fresh_jwk()
    ),
    "BulkIssueCredentials": lambda w: pb.BulkIssueCredentialsRequest(
        requests=[pb.IssueCredentialRequest(assessment_id=w.favorable.id, holder_jwk=fresh_jwk())]
    ),
    "IssueFacilityCredential": lambda w: pb.IssueFacilityCredentialRequest(
        organization_id=w.org.id, node_id=w.node.id
    ),
    "GetCredential": lambda w: pb.GetCredentialRequest(id=w.credential()),
    "ListCredentials": lambda w: pb.ListCredentialsRequest(organization_id=w.org.id),
    "SuspendCredential": lambda w: pb.SuspendCredentialRequest(id=w.credential(), reason="inquiry"),
    "ReinstateCredential": lambda w: pb.ReinstateCredentialRequest(
        id=w.suspended_credential(), reason="closed"
    ),
    "RevokeCredential": lambda w: pb.RevokeCredentialRequest(id=w.credential(), reason="left"),
    "GetTrustBundle": lambda w: pb.GetTrustBundleRequest(),
    "GetStatusList": lambda w: pb.GetStatusListRequest(uri=w.registry.ctx.config.status_list_uri(1)),
    "GetJwks": lambda w: pb.GetJwksRequest(),
    "GetRootHistory": lambda w: pb.GetRootHistoryRequest(),
    "Watch": lambda w: pb.WatchRequest(),
    "EnrollNode": lambda w: pb.EnrollNodeRequest(
        token=w.enrollment_token(), name="gateway", public_jwk=fresh_jwk()
    ),
    "ListAuditEvents": lambda w: pb.ListAuditEventsRequest(),
    "VerifyAuditChain": lambda w: pb.VerifyAuditChainRequest(),
    "GetStatistics": lambda w: pb.GetStatisticsRequest(),
    "GetMonthlyReport": lambda w: pb.GetMonthlyReportRequest(month=str(Month.of(w.registry.clock()))),
    "ListIssuanceFacts": lambda w: pb.ListIssuanceFactsRequest(),
    "ListCredentialStates": lambda w: pb.ListCredentialStatesRequest(),
    "ImportAgreement": lambda w: pb.ImportAgreementRequest(
        document=w.agreement_document("GB"), partner_endpoint="127.0.0.1:9"
    ),
    "ListAgreements": lambda w: pb.ListAgreementsRequest(),
    "TerminateAgreement": lambda w: pb.TerminateAgreementRequest(id=w.agreement.id, reason="ended"),
    "IssueVisitAssurance": lambda w: pb.IssueVisitAssuranceRequest(
        credential_id=w.credential(),
        host_jurisdiction=w.agreement.partner_jurisdiction,
        host_organization="example-research",
        programme="supply-chain-study",
        kind=pb.VISIT_KIND_ONE_TIME,
        not_before=Timestamp(seconds=w.registry.clock()),
        not_after=Timestamp(seconds=w.registry.clock() + 30 * DAY),
    ),
}


def call(client: Client, service: str, method: str, streaming: bool, request: Message) -> grpc.StatusCode:
    """Call ``service/method`` through its generated stub; the status code it ends with."""
    stub = getattr(rpc, f"{service}Stub")(client.channel)
    try:
        response = getattr(stub, method)(request, timeout=15)
        if streaming:
            next(response)
            response.cancel()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK
