"""Thin gRPC servicers: parse the request, call the domain, convert the answer.

Generated protobuf types appear in this module and nowhere else in the
registry. Errors are mapped to status codes by :func:`clearance.rpc.handler`;
the caller comes from the auth interceptor (:func:`registry.auth.caller`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from clearance.agreement import Agreement
from clearance.errors import ClearanceError, InvalidArgumentError
from clearance.keys import jwks
from clearance.rpc import handler, status_code
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry import (
    assessments,
    federation,
    issuance,
    lifecycle,
    organizations,
    people,
    publication,
    statistics,
)
from registry.auth import caller
from registry.context import RegistryContext, loads_list
from registry.lifecycle import CredentialState
from registry.models import AgreementRow, CredentialLike, Node, Organization, Person, Staff, StatusListRow
from registry.policy import Role, require_scope

# -- conversions ---------------------------------------------------------------


def ts(seconds: int | None) -> Timestamp | None:
    if not seconds:
        return None
    return Timestamp(seconds=seconds)


def seconds(value: Timestamp, field: str, *, required: bool = True) -> int:
    if value.seconds == 0 and value.nanos == 0:
        if required:
            raise InvalidArgumentError(field, "is required")
        return 0
    return int(value.seconds)


_KINDS = {
    common.ORGANIZATION_KIND_GOVERNMENT: "government",
    common.ORGANIZATION_KIND_COMPANY: "company",
    common.ORGANIZATION_KIND_UNIVERSITY: "university",
    common.ORGANIZATION_KIND_LABORATORY: "laboratory",
}
_KINDS_BACK = {v: k for k, v in _KINDS.items()}
_ROLES = {
    common.ROLE_ADMINISTRATOR: Role.ADMINISTRATOR,
    common.ROLE_ADJUDICATOR: Role.ADJUDICATOR,
    common.ROLE_SECURITY_OFFICER: Role.SECURITY_OFFICER,
    common.ROLE_OVERSIGHT: Role.OVERSIGHT,
    common.ROLE_NODE: Role.NODE,
}
_ROLES_BACK = {v: k for k, v in _ROLES.items()}
_ITEMS = {
    common.ASSESSMENT_ITEM_FAMILY_AND_COHABITANTS: assessments.Item.FAMILY_AND_COHABITANTS,
    common.ASSESSMENT_ITEM_CRIMINAL_AND_DISCIPLINARY_HISTORY: assessments.Item.CRIMINAL_AND_DISCIPLINARY_HISTORY,
    common.ASSESSMENT_ITEM_INFORMATION_HANDLING_VIOLATIONS: assessments.Item.INFORMATION_HANDLING_VIOLATIONS,
    common.ASSESSMENT_ITEM_DRUG_ABUSE: assessments.Item.DRUG_ABUSE,
    common.ASSESSMENT_ITEM_MENTAL_ILLNESS: assessments.Item.MENTAL_ILLNESS,
    common.ASSESSMENT_ITEM_ALCOHOL_MODERATION: assessments.Item.ALCOHOL_MODERATION,
    common.ASSESSMENT_ITEM_FINANCIAL_SITUATION: assessments.Item.FINANCIAL_SITUATION,
}
_ITEMS_BACK = {v.value: k for k, v in _ITEMS.items()}
_OUTCOMES = {
    common.FINDING_OUTCOME_NO_CONCERN: "no_concern",
    common.FINDING_OUTCOME_MITIGATED: "mitigated",
    common.FINDING_OUTCOME_CONCERN: "concern",
}
_OUTCOMES_BACK = {v: k for k, v in _OUTCOMES.items()}
_ASSESSMENT_STATES = {
    assessments.State.AWAITING_CONSENT: common.ASSESSMENT_STATE_AWAITING_CONSENT,
    assessments.State.IN_PROGRESS: common.ASSESSMENT_STATE_IN_PROGRESS,
    assessments.State.FAVORABLE: common.ASSESSMENT_STATE_FAVORABLE,
    assessments.State.UNFAVORABLE: common.ASSESSMENT_STATE_UNFAVORABLE,
    assessments.State.WITHDRAWN: common.ASSESSMENT_STATE_WITHDRAWN,
    assessments.State.EXPIRED: common.ASSESSMENT_STATE_EXPIRED,
    assessments.State.REASSESSMENT_DUE: common.ASSESSMENT_STATE_REASSESSMENT_DUE,
}
_ASSESSMENT_STATES_BACK = {v: k for k, v in _ASSESSMENT_STATES.items()}
_DECISIONS = {"favorable": common.DECISION_FAVORABLE, "unfavorable": common.DECISION_UNFAVORABLE}
_DECISIONS_BACK = {v: k for k, v in _DECISIONS.items()}
_CREDENTIAL_STATES = {
    CredentialState.VALID: common.CREDENTIAL_STATE_VALID,
    CredentialState.SUSPENDED: common.CREDENTIAL_STATE_SUSPENDED,
    CredentialState.REVOKED: common.CREDENTIAL_STATE_REVOKED,
    CredentialState.EXPIRED: common.CREDENTIAL_STATE_EXPIRED,
}
_CREDENTIAL_STATES_BACK = {v: k for k, v in _CREDENTIAL_STATES.items()}
_APPEAL_STATES = {
    "open": common.APPEAL_STATE_OPEN,
    "upheld": common.APPEAL_STATE_UPHELD,
    "dismissed": common.APPEAL_STATE_DISMISSED,
}
_APPEAL_STATES_BACK = {v: k for k, v in _APPEAL_STATES.items()}


def _enum(table: dict[Any, Any], value: Any, field: str, *, optional: bool = False) -> Any:
    if optional and value == 0:
        return None
    if value not in table:
        raise InvalidArgumentError(field, "is missing or not a known value")
    return table[value]


def organization_pb(org: Organization) -> pb.Organization:
    message = pb.Organization(
        id=org.id,
        name=org.name,
        kind=_KINDS_BACK.get(org.kind, common.ORGANIZATION_KIND_UNSPECIFIED),
        country=org.country,
        created_at=ts(org.created_at),
    )
    if org.facility_level:
        message.facility_clearance.CopyFrom(
            pb.FacilityClearance(
                clearance=common.Clearance(
                    jurisdiction=org.country,
                    level=org.facility_level,
                    categories=loads_list(org.facility_categories),
                ),
                valid_until=ts(org.facility_valid_until),
                active=bool(org.facility_active),
            )
        )
    return message


def node_pb(node: Node) -> pb.Node:
    return pb.Node(
        id=node.id,
        organization_id=node.organization_id,
        name=node.name,
        key_thumbprint=node.key_thumbprint,
        enrolled_at=ts(node.enrolled_at),
    )


def staff_pb(staff: Staff) -> pb.Staff:
    return pb.Staff(
        id=staff.id,
        name=staff.name,
        role=_ROLES_BACK[Role(staff.role)],
        organization_id=staff.organization_id or "",
        key_thumbprint=staff.key_thumbprint,
        disabled=staff.disabled,
    )


def person_pb(person: Person) -> pb.Person:
    return pb.Person(
        id=person.id,
        subject=person.subject,
        organization_id=person.organization_id or "",
        enrolled_at=ts(person.enrolled_at),
    )


def personal_data_pb(data: people.PersonalData) -> pb.PersonalData:
    return pb.PersonalData(
        given_name=data.given_name,
        family_name=data.family_name,
        birthdate=data.birthdate,
        nationality=data.nationality,
        family=[
            pb.FamilyMember(
                relation=m.relation, name=m.name, nationality=m.nationality, cohabitant=m.cohabitant
            )
            for m in data.family
        ],
    )


def personal_data_from(message: pb.PersonalData) -> people.PersonalData:
    return people.PersonalData(
        given_name=message.given_name,
        family_name=message.family_name,
        birthdate=message.birthdate,
        nationality=message.nationality,
        family=tuple(
            people.FamilyMember(m.relation, m.name, m.nationality, m.cohabitant) for m in message.family
        ),
    )


def assessment_pb(view: assessments.AssessmentView) -> pb.Assessment:
    return pb.Assessment(
        id=view.id,
        person_id=view.person_id,
        state=_ASSESSMENT_STATES[view.state],
        level=view.level,
        categories=list(view.categories),
        consent_at=ts(view.consent_at),
        findings=[
            pb.Finding(
                item=_ITEMS_BACK[f.item],
                outcome=_OUTCOMES_BACK[f.outcome],
                summary=f.summary,
                recorded_at=ts(f.recorded_at),
                recorded_by=f.recorded_by,
            )
            for f in view.findings
        ],
        decision=_DECISIONS.get(view.decision or "", common.DECISION_UNSPECIFIED),
        reasons=list(view.reasons),
        decided_at=ts(view.decided_at),
        valid_until=ts(view.valid_until),
        opened_at=ts(view.opened_at),
    )


def notice_pb(view: assessments.NoticeView) -> pb.Notice:
    return pb.Notice(
        id=view.id,
        assessment_id=view.assessment_id,
        decision=_DECISIONS.get(view.decision, common.DECISION_UNSPECIFIED),
        reasons=list(view.reasons),
        appeal_instructions=view.appeal_instructions,
        appeal_deadline=ts(view.appeal_deadline),
        issued_at=ts(view.issued_at),
    )


def appeal_pb(view: assessments.AppealView) -> pb.Appeal:
    return pb.Appeal(
        id=view.id,
        assessment_id=view.assessment_id,
        state=_APPEAL_STATES[view.state],
        grounds=view.grounds,
        resolution=view.resolution or "",
        filed_at=ts(view.filed_at),
        resolved_at=ts(view.resolved_at),
        resolved_by=view.resolved_by or "",
    )


def credential_pb(credential: CredentialLike, uri: str, now: int) -> pb.CredentialRecord:
    return pb.CredentialRecord(
        id=credential.id,
        person_id=credential.person_id or "",
        organization_id=credential.organization_id or "",
        kind=credential.kind,
        state=_CREDENTIAL_STATES[lifecycle.effective_state(credential, now)],
        clearance=common.Clearance(
            jurisdiction=credential.jurisdiction,
            level=credential.level,
            categories=lifecycle.categories_of(credential),
        ),
        status_list_uri=uri,
        status_index=credential.status_index,
        issued_at=ts(credential.issued_at),
        expires_at=ts(credential.expires_at),
        state_reason=credential.state_reason or "",
        holder_key_thumbprint=credential.holder_thumbprint,
    )


def _page(request_page: common.PageRequest) -> tuple[int, str]:
    return request_page.page_size, request_page.page_token


# -- servicers -----------------------------------------------------------------


class _Base:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx
        self._uris: dict[int, str] = {}

    def credential_message(self, credential: CredentialLike) -> pb.CredentialRecord:
        uri = self._uris.get(credential.status_list_id)
        if uri is None:
            with self.ctx.db.transaction() as session:
                row = session.get(StatusListRow, credential.status_list_id)
                uri = self._uris[credential.status_list_id] = row.uri if row else ""
        return credential_pb(credential, uri, self.ctx.now())


class OrganizationServicer(_Base, rpc.OrganizationServiceServicer):
    @handler
    def CreateOrganization(
        self, request: pb.CreateOrganizationRequest, context: grpc.ServicerContext
    ) -> pb.CreateOrganizationResponse:
        org = organizations.create_organization(
            self.ctx,
            caller(),
            name=request.name,
            kind=_enum(_KINDS, request.kind, "kind"),
            country=request.country,
            idempotency_key=request.idempotency_key,
        )
        return pb.CreateOrganizationResponse(organization=organization_pb(org))

    @handler
    def GetOrganization(
        self, request: pb.GetOrganizationRequest, context: grpc.ServicerContext
    ) -> pb.GetOrganizationResponse:
        return pb.GetOrganizationResponse(
            organization=organization_pb(organizations.read_organization(self.ctx, caller(), request.id))
        )

    @handler
    def ListOrganizations(
        self, request: pb.ListOrganizationsRequest, context: grpc.ServicerContext
    ) -> pb.ListOrganizationsResponse:
        rows, token = organizations.list_organizations(self.ctx, *_page(request.page))
        return pb.ListOrganizationsResponse(
            organizations=[organization_pb(o) for o in rows], next_page_token=token
        )

    @handler
    def GrantFacilityClearance(
        self, request: pb.GrantFacilityClearanceRequest, context: grpc.ServicerContext
    ) -> pb.GrantFacilityClearanceResponse:
        org = organizations.grant_facility_clearance(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            level=request.level,
            categories=list(request.categories),
            valid_until=seconds(request.valid_until, "valid_until"),
        )
        return pb.GrantFacilityClearanceResponse(organization=organization_pb(org))

    @handler
    def WithdrawFacilityClearance(
        self, request: pb.WithdrawFacilityClearanceRequest, context: grpc.ServicerContext
    ) -> pb.WithdrawFacilityClearanceResponse:
        org, suspended = lifecycle.withdraw_facility_clearance(
            self.ctx, caller(), organization_id=request.organization_id, reason=request.reason
        )
        return pb.WithdrawFacilityClearanceResponse(
            organization=organization_pb(org), suspended_credentials=suspended
        )

    @handler
    def CreateEnrollmentToken(
        self, request: pb.CreateEnrollmentTokenRequest, context: grpc.ServicerContext
    ) -> pb.CreateEnrollmentTokenResponse:
        issued = organizations.create_enrollment_token(
            self.ctx, caller(), organization_id=request.organization_id, ttl_seconds=request.ttl_seconds
        )
        root = self.ctx.keys.root
        return pb.CreateEnrollmentTokenResponse(
            token=issued.token,
            expires_at=ts(issued.expires_at),
            root_fingerprint=root.kid if root else "",
        )

    @handler
    def ListNodes(self, request: pb.ListNodesRequest, context: grpc.ServicerContext) -> pb.ListNodesResponse:
        rows, token = organizations.list_nodes(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return pb.ListNodesResponse(nodes=[node_pb(n) for n in rows], next_page_token=token)


class StaffServicer(_Base, rpc.StaffServiceServicer):
    @handler
    def CreateStaff(
        self, request: pb.CreateStaffRequest, context: grpc.ServicerContext
    ) -> pb.CreateStaffResponse:
        role = _enum(_ROLES, request.role, "role")
        staff = organizations.create_staff(
            self.ctx,
            caller(),
            name=request.name,
            role=role.value,
            organization_id=request.organization_id,
            public_jwk=request.public_jwk,
        )
        return pb.CreateStaffResponse(staff=staff_pb(staff))

    @handler
    def ListStaff(self, request: pb.ListStaffRequest, context: grpc.ServicerContext) -> pb.ListStaffResponse:
        rows, token = organizations.list_staff(self.ctx, *_page(request.page))
        return pb.ListStaffResponse(staff=[staff_pb(s) for s in rows], next_page_token=token)

    @handler
    def DisableStaff(
        self, request: pb.DisableStaffRequest, context: grpc.ServicerContext
    ) -> pb.DisableStaffResponse:
        return pb.DisableStaffResponse(
            staff=staff_pb(organizations.disable_staff(self.ctx, caller(), request.id))
        )

    @handler
    def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.ServicerContext) -> pb.WhoAmIResponse:
        who = caller()
        return pb.WhoAmIResponse(
            principal=who.principal,
            role=_ROLES_BACK[who.role],
            organization_id=who.organization_id or "",
            jurisdiction=self.ctx.config.jurisdiction,
        )


class PersonnelServicer(_Base, rpc.PersonnelServiceServicer):
    @handler
    def EnrollPerson(
        self, request: pb.EnrollPersonRequest, context: grpc.ServicerContext
    ) -> pb.EnrollPersonResponse:
        person = people.enroll_person(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            data=personal_data_from(request.personal_data),
            idempotency_key=request.idempotency_key,
        )
        return pb.EnrollPersonResponse(person=person_pb(person))

    @handler
    def GetPerson(self, request: pb.GetPersonRequest, context: grpc.ServicerContext) -> pb.GetPersonResponse:
        return pb.GetPersonResponse(person=person_pb(people.read_person(self.ctx, caller(), request.id)))

    @handler
    def ListPeople(
        self, request: pb.ListPeopleRequest, context: grpc.ServicerContext
    ) -> pb.ListPeopleResponse:
        rows, token = people.list_people(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return pb.ListPeopleResponse(people=[person_pb(p) for p in rows], next_page_token=token)

    @handler
    def ReadPersonalData(
        self, request: pb.ReadPersonalDataRequest, context: grpc.ServicerContext
    ) -> pb.ReadPersonalDataResponse:
        data = people.read_personal_data(
            self.ctx, caller(), person_id=request.person_id, purpose=request.purpose
        )
        return pb.ReadPersonalDataResponse(personal_data=personal_data_pb(data))

    @handler
    def SetAffiliation(
        self, request: pb.SetAffiliationRequest, context: grpc.ServicerContext
    ) -> pb.SetAffiliationResponse:
        person, suspended = people.set_affiliation(
            self.ctx,
            caller(),
            person_id=request.person_id,
            organization_id=request.organization_id,
            reason=request.reason,
        )
        return pb.SetAffiliationResponse(person=person_pb(person), suspended_credentials=suspended)


class AssessmentServicer(_Base, rpc.AssessmentServiceServicer):
    @handler
    def OpenAssessment(
        self, request: pb.OpenAssessmentRequest, context: grpc.ServicerContext
    ) -> pb.OpenAssessmentResponse:
        view = assessments.open_assessment(
            self.ctx,
            caller(),
            person_id=request.person_id,
            level=request.level,
            categories=list(request.categories),
            idempotency_key=request.idempotency_key,
        )
        return pb.OpenAssessmentResponse(assessment=assessment_pb(view))

    @handler
    def RecordConsent(
        self, request: pb.RecordConsentRequest, context: grpc.ServicerContext
    ) -> pb.RecordConsentResponse:
        view = assessments.record_consent(
            self.ctx, caller(), assessment_id=request.assessment_id, evidence=request.evidence
        )
        return pb.RecordConsentResponse(assessment=assessment_pb(view))

    @handler
    def WithdrawConsent(
        self, request: pb.WithdrawConsentRequest, context: grpc.ServicerContext
    ) -> pb.WithdrawConsentResponse:
        view, suspended = assessments.withdraw_consent(
            self.ctx, caller(), assessment_id=request.assessment_id, reason=request.reason
        )
        return pb.WithdrawConsentResponse(assessment=assessment_pb(view), suspended_credentials=suspended)

    @handler
    def RecordFinding(
        self, request: pb.RecordFindingRequest, context: grpc.ServicerContext
    ) -> pb.RecordFindingResponse:
        view = assessments.record_finding(
            self.ctx,
            caller(),
            assessment_id=request.assessment_id,
            item=_enum(_ITEMS, request.item, "item").value,
            outcome=_enum(_OUTCOMES, request.outcome, "outcome"),
            summary=request.summary,
        )
        return pb.RecordFindingResponse(assessment=assessment_pb(view))

    @handler
    def DecideAssessment(
        self, request: pb.DecideAssessmentRequest, context: grpc.ServicerContext
    ) -> pb.DecideAssessmentResponse:
        view, notice = assessments.decide(
            self.ctx,
            caller(),
            assessment_id=request.assessment_id,
            decision=_enum(_DECISIONS_BACK, request.decision, "decision"),
            reasons=list(request.reasons),
        )
        return pb.DecideAssessmentResponse(assessment=assessment_pb(view), notice=notice_pb(notice))

    @handler
    def GetAssessment(
        self, request: pb.GetAssessmentRequest, context: grpc.ServicerContext
    ) -> pb.GetAssessmentResponse:
        return pb.GetAssessmentResponse(
            assessment=assessment_pb(assessments.get_assessment(self.ctx, caller(), request.id))
        )

    @handler
    def ListAssessments(
        self, request: pb.ListAssessmentsRequest, context: grpc.ServicerContext
    ) -> pb.ListAssessmentsResponse:
        state = _enum(_ASSESSMENT_STATES_BACK, request.state, "state", optional=True)
        views, token = assessments.list_assessments(
            self.ctx,
            caller(),
            person_id=request.person_id,
            state=state.value if state else "",
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return pb.ListAssessmentsResponse(
            assessments=[assessment_pb(v) for v in views], next_page_token=token
        )

    @handler
    def GetNotice(self, request: pb.GetNoticeRequest, context: grpc.ServicerContext) -> pb.GetNoticeResponse:
        return pb.GetNoticeResponse(
            notice=notice_pb(assessments.get_notice(self.ctx, caller(), request.assessment_id))
        )

    @handler
    def FileAppeal(
        self, request: pb.FileAppealRequest, context: grpc.ServicerContext
    ) -> pb.FileAppealResponse:
        view = assessments.file_appeal(
            self.ctx, caller(), assessment_id=request.assessment_id, grounds=request.grounds
        )
        return pb.FileAppealResponse(appeal=appeal_pb(view))

    @handler
    def ResolveAppeal(
        self, request: pb.ResolveAppealRequest, context: grpc.ServicerContext
    ) -> pb.ResolveAppealResponse:
        appeal, view = assessments.resolve_appeal(
            self.ctx,
            caller(),
            appeal_id=request.appeal_id,
            uphold=request.uphold,
            resolution=request.resolution,
        )
        return pb.ResolveAppealResponse(appeal=appeal_pb(appeal), assessment=assessment_pb(view))

    @handler
    def ListAppeals(
        self, request: pb.ListAppealsRequest, context: grpc.ServicerContext
    ) -> pb.ListAppealsResponse:
        state = _enum(_APPEAL_STATES_BACK, request.state, "state", optional=True)
        views, token = assessments.list_appeals(
            self.ctx, state=state or "", page_size=request.page.page_size, page_token=request.page.page_token
        )
        return pb.ListAppealsResponse(appeals=[appeal_pb(v) for v in views], next_page_token=token)


class CredentialServicer(_Base, rpc.CredentialServiceServicer):
    @handler
    def IssueCredential(
        self, request: pb.IssueCredentialRequest, context: grpc.ServicerContext
    ) -> pb.IssueCredentialResponse:
        issued = issuance.issue_credential(
            self.ctx,
            caller(),
            issuance.IssueRequest(request.assessment_id, request.holder_jwk, request.idempotency_key),
        )
        return pb.IssueCredentialResponse(
            credential=self.credential_message(issued.credential), sd_jwt=issued.sd_jwt
        )

    @handler
    def BulkIssueCredentials(
        self, request: pb.BulkIssueCredentialsRequest, context: grpc.ServicerContext
    ) -> pb.BulkIssueCredentialsResponse:
        results = issuance.bulk_issue(
            self.ctx,
            caller(),
            [
                issuance.IssueRequest(r.assessment_id, r.holder_jwk, r.idempotency_key)
                for r in request.requests
            ],
        )
        return pb.BulkIssueCredentialsResponse(
            results=[
                pb.IssueCredentialResponse(credential=self.credential_message(r.credential), sd_jwt=r.sd_jwt)
                for r in results
            ]
        )

    @handler
    def IssueFacilityCredential(
        self, request: pb.IssueFacilityCredentialRequest, context: grpc.ServicerContext
    ) -> pb.IssueFacilityCredentialResponse:
        issued = issuance.issue_facility(
            self.ctx,
            caller(),
            organization_id=request.organization_id,
            node_id=request.node_id,
            idempotency_key=request.idempotency_key,
        )
        return pb.IssueFacilityCredentialResponse(
            credential=self.credential_message(issued.credential), sd_jwt=issued.sd_jwt
        )

    @handler
    def GetCredential(
        self, request: pb.GetCredentialRequest, context: grpc.ServicerContext
    ) -> pb.GetCredentialResponse:
        with self.ctx.db.transaction() as session:
            credential = lifecycle.get_credential(session, request.id)
        require_scope(caller(), credential.organization_id)
        return pb.GetCredentialResponse(credential=self.credential_message(credential))

    @handler
    def ListCredentials(
        self, request: pb.ListCredentialsRequest, context: grpc.ServicerContext
    ) -> pb.ListCredentialsResponse:
        limit, offset = organizations.page_bounds(request.page.page_size, request.page.page_token)
        state = _enum(_CREDENTIAL_STATES_BACK, request.state, "state", optional=True)
        rows = lifecycle.list_credentials(
            self.ctx,
            caller(),
            person_id=request.person_id,
            organization_id=request.organization_id,
            state=state.value if state else "",
            limit=limit,
            offset=offset,
        )
        return pb.ListCredentialsResponse(
            credentials=[self.credential_message(c) for c in rows],
            next_page_token=organizations.next_token(offset, limit, len(rows)),
        )

    def _change(self, credential_id: str, target: CredentialState, reason: str) -> pb.CredentialRecord:
        credential = lifecycle.change_state(
            self.ctx, caller(), credential_id=credential_id, target=target, reason=reason
        )
        return self.credential_message(credential)

    @handler
    def SuspendCredential(
        self, request: pb.SuspendCredentialRequest, context: grpc.ServicerContext
    ) -> pb.SuspendCredentialResponse:
        return pb.SuspendCredentialResponse(
            credential=self._change(request.id, CredentialState.SUSPENDED, request.reason)
        )

    @handler
    def ReinstateCredential(
        self, request: pb.ReinstateCredentialRequest, context: grpc.ServicerContext
    ) -> pb.ReinstateCredentialResponse:
        return pb.ReinstateCredentialResponse(
            credential=self._change(request.id, CredentialState.VALID, request.reason)
        )

    @handler
    def RevokeCredential(
        self, request: pb.RevokeCredentialRequest, context: grpc.ServicerContext
    ) -> pb.RevokeCredentialResponse:
        return pb.RevokeCredentialResponse(
            credential=self._change(request.id, CredentialState.REVOKED, request.reason)
        )


class PublicationServicer(_Base, rpc.PublicationServiceServicer):
    def __init__(
        self, ctx: RegistryContext, hub: publication.PublicationHub, *, heartbeat: float = 15.0
    ) -> None:
        super().__init__(ctx)
        self.hub = hub
        self.heartbeat = heartbeat

    @handler
    def GetTrustBundle(
        self, request: pb.GetTrustBundleRequest, context: grpc.ServicerContext
    ) -> pb.GetTrustBundleResponse:
        return pb.GetTrustBundleResponse(bundle=publication.bundle_token(self.ctx, request.jurisdiction))

    @handler
    def GetStatusList(
        self, request: pb.GetStatusListRequest, context: grpc.ServicerContext
    ) -> pb.GetStatusListResponse:
        if not request.uri:
            raise InvalidArgumentError("uri", "is required")
        return pb.GetStatusListResponse(token=publication.status_list_token(self.ctx, request.uri))

    @handler
    def GetJwks(self, request: pb.GetJwksRequest, context: grpc.ServicerContext) -> pb.GetJwksResponse:
        keys = [k.public for k in self.ctx.keys.issuing.values()]
        return pb.GetJwksResponse(jwks_json=json.dumps(jwks(keys)))

    @handler
    def GetRootHistory(
        self, request: pb.GetRootHistoryRequest, context: grpc.ServicerContext
    ) -> pb.GetRootHistoryResponse:
        root = self.ctx.keys.root
        root_jwk = json.dumps(root.public.jwk) if root else _root_from_bundle(self.ctx)
        return pb.GetRootHistoryResponse(rotations=publication.root_history(self.ctx), root_jwk=root_jwk)

    def Watch(self, request: pb.WatchRequest, context: grpc.ServicerContext) -> Iterator[pb.WatchResponse]:
        held = publication.Held(
            bundle_version=max(0, request.bundle_version),
            lists={s.uri: s.sequence for s in request.status_lists},
            foreign={f"bundle:{j}": v for j, v in request.foreign_bundle_versions.items()},
        )
        try:
            for kind, payload in self.hub.stream(held, active=context.is_active, heartbeat=self.heartbeat):
                if kind == "heartbeat":
                    yield pb.WatchResponse(heartbeat=Timestamp(seconds=int(payload)))
                else:
                    message = pb.WatchResponse()
                    setattr(message, kind, str(payload))
                    yield message
        except ClearanceError as exc:  # a stream ends with a status, never a traceback
            context.abort(status_code(exc), str(exc))


def _root_from_bundle(ctx: RegistryContext) -> str:
    from clearance.bundle import TrustBundle

    token = publication.bundle_token(ctx)
    return json.dumps(TrustBundle.header_root(token).jwk)


class EnrollmentServicer(_Base, rpc.EnrollmentServiceServicer):
    @handler
    def EnrollNode(
        self, request: pb.EnrollNodeRequest, context: grpc.ServicerContext
    ) -> pb.EnrollNodeResponse:
        # One transaction: a failure leaves the token unused. Enrollment stands even when
        # the organization is not cleared yet; its facility credential is issued once it is.
        node, facility = issuance.enroll_node(
            self.ctx, token=request.token, name=request.name, public_jwk=request.public_jwk
        )
        bundle = publication.bundle_token(self.ctx)
        root = self.ctx.keys.root
        root_jwk = json.dumps(root.public.jwk) if root else _root_from_bundle(self.ctx)
        self.ctx.changed()
        return pb.EnrollNodeResponse(
            node=node_pb(node), trust_bundle=bundle, root_jwk=root_jwk, facility_credential=facility
        )


class AuditServicer(_Base, rpc.AuditServiceServicer):
    @handler
    def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListAuditEventsResponse:
        events = statistics.list_events(
            self.ctx,
            after=request.after_sequence,
            action=request.action,
            object_id=request.object_id,
            limit=request.limit,
        )
        return pb.ListAuditEventsResponse(
            events=[
                pb.AuditEvent(
                    sequence=e.seq,
                    at=ts(e.at),
                    actor=e.actor,
                    action=e.action,
                    object_type=e.object_type,
                    object_id=e.object_id,
                    details_json=e.details,
                    hash=e.hash,
                    previous_hash=e.prev_hash,
                )
                for e in events
            ]
        )

    @handler
    def VerifyAuditChain(
        self, request: pb.VerifyAuditChainRequest, context: grpc.ServicerContext
    ) -> pb.VerifyAuditChainResponse:
        report = statistics.verify_chain(self.ctx)
        return pb.VerifyAuditChainResponse(
            intact=report.intact,
            events_checked=report.events_checked,
            broken_at=report.broken_at,
            problem=report.problem,
            head_hash=report.head_hash,
        )

    @handler
    def GetStatistics(
        self, request: pb.GetStatisticsRequest, context: grpc.ServicerContext
    ) -> pb.GetStatisticsResponse:
        return pb.GetStatisticsResponse(counts=statistics.counts(self.ctx))


_AGREEMENT_STATES = {
    federation.IN_FORCE: common.AGREEMENT_STATE_IN_FORCE,
    federation.TERMINATED: common.AGREEMENT_STATE_TERMINATED,
}
_VISIT_KINDS = {
    pb.VISIT_KIND_ONE_TIME: "one_time",
    pb.VISIT_KIND_RECURRING: "recurring",
    pb.VISIT_KIND_EMERGENCY: "emergency",
}


def _agreement_pb(row: AgreementRow, now: int) -> pb.AgreementRecord:
    state = _AGREEMENT_STATES.get(row.state, common.AGREEMENT_STATE_UNSPECIFIED)
    if row.state == federation.IN_FORCE:
        try:
            if Agreement.parse(json.loads(row.document)).expires_at <= now:
                state = common.AGREEMENT_STATE_EXPIRED
        except (ValueError, ClearanceError):
            pass
    record = pb.AgreementRecord(
        id=row.id,
        partner_jurisdiction=row.partner_jurisdiction,
        partner_endpoint=row.partner_endpoint,
        state=state,
        document=row.document,
        partner_problem=row.problem or "",
    )
    if row.last_sync:
        record.last_partner_sync.seconds = row.last_sync
    return record


class FederationServicer(_Base, rpc.FederationServiceServicer):
    @handler
    def ImportAgreement(
        self, request: pb.ImportAgreementRequest, context: grpc.ServicerContext
    ) -> pb.ImportAgreementResponse:
        row = federation.import_agreement(
            self.ctx,
            caller(),
            document=request.document,
            partner_endpoint=request.partner_endpoint,
            partner_ca_pem=request.partner_ca_pem,
        )
        return pb.ImportAgreementResponse(agreement=_agreement_pb(row, self.ctx.now()))

    @handler
    def ListAgreements(
        self, request: pb.ListAgreementsRequest, context: grpc.ServicerContext
    ) -> pb.ListAgreementsResponse:
        now = self.ctx.now()
        return pb.ListAgreementsResponse(
            agreements=[_agreement_pb(r, now) for r in federation.list_agreements(self.ctx)]
        )

    @handler
    def TerminateAgreement(
        self, request: pb.TerminateAgreementRequest, context: grpc.ServicerContext
    ) -> pb.TerminateAgreementResponse:
        row = federation.terminate_agreement(
            self.ctx, caller(), agreement_id=request.id, reason=request.reason
        )
        return pb.TerminateAgreementResponse(agreement=_agreement_pb(row, self.ctx.now()))

    @handler
    def IssueVisitAssurance(
        self, request: pb.IssueVisitAssuranceRequest, context: grpc.ServicerContext
    ) -> pb.IssueVisitAssuranceResponse:
        kind = _VISIT_KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgumentError("kind", "is missing or not a known value")
        token = federation.issue_visit(
            self.ctx,
            caller(),
            credential_id=request.credential_id,
            host_jurisdiction=request.host_jurisdiction,
            host_organization=request.host_organization,
            programme=request.programme,
            kind=kind,
            not_before=request.not_before.seconds,
            not_after=request.not_after.seconds or (self.ctx.now() + 30 * 86400),
        )
        return pb.IssueVisitAssuranceResponse(assurance=token)
