"""Conversions between the workflows' domain records and the generated protobuf types.

Generated protobuf types appear in :mod:`registry.api` only: here, in the
servicers, the server and its interceptors. Requests are parsed into domain
values here (enums, times, pages), and the workflows' records turned into
messages; nothing here reads the database.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from clearance.errors import InvalidArgumentError
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from registry.policy import Role
from registry.store.audit import ChainReport
from registry.workflows import assessments, people
from registry.workflows.appeals import AppealState, AppealView
from registry.workflows.arguments import PageRequest
from registry.workflows.credentials import CredentialState, CredentialView
from registry.workflows.enrollment import NodeView
from registry.workflows.facts import CredentialStateFact, IssuanceFact, KeysetPage
from registry.workflows.federation import AgreementState, AgreementView
from registry.workflows.organizations import OrganizationView, StaffView
from registry.workflows.oversight import AuditEventView


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


KINDS = {
    common.ORGANIZATION_KIND_GOVERNMENT: "government",
    common.ORGANIZATION_KIND_COMPANY: "company",
    common.ORGANIZATION_KIND_UNIVERSITY: "university",
    common.ORGANIZATION_KIND_LABORATORY: "laboratory",
}
KINDS_BACK = {v: k for k, v in KINDS.items()}
ROLES = {
    common.ROLE_ADMINISTRATOR: Role.ADMINISTRATOR,
    common.ROLE_ADJUDICATOR: Role.ADJUDICATOR,
    common.ROLE_SECURITY_OFFICER: Role.SECURITY_OFFICER,
    common.ROLE_OVERSIGHT: Role.OVERSIGHT,
    common.ROLE_NODE: Role.NODE,
    common.ROLE_INVESTIGATOR: Role.INVESTIGATOR,
}
ROLES_BACK = {v: k for k, v in ROLES.items()}
ITEMS = {
    common.ASSESSMENT_ITEM_FAMILY_AND_COHABITANTS: assessments.Item.FAMILY_AND_COHABITANTS,
    common.ASSESSMENT_ITEM_CRIMINAL_AND_DISCIPLINARY_HISTORY: assessments.Item.CRIMINAL_AND_DISCIPLINARY_HISTORY,
    common.ASSESSMENT_ITEM_INFORMATION_HANDLING_VIOLATIONS: assessments.Item.INFORMATION_HANDLING_VIOLATIONS,
    common.ASSESSMENT_ITEM_DRUG_ABUSE: assessments.Item.DRUG_ABUSE,
    common.ASSESSMENT_ITEM_MENTAL_ILLNESS: assessments.Item.MENTAL_ILLNESS,
    common.ASSESSMENT_ITEM_ALCOHOL_MODERATION: assessments.Item.ALCOHOL_MODERATION,
    common.ASSESSMENT_ITEM_FINANCIAL_SITUATION: assessments.Item.FINANCIAL_SITUATION,
}
ITEMS_BACK = {v.value: k for k, v in ITEMS.items()}
OUTCOMES = {
    common.FINDING_OUTCOME_NO_CONCERN: "no_concern",
    common.FINDING_OUTCOME_MITIGATED: "mitigated",
    common.FINDING_OUTCOME_CONCERN: "concern",
}
OUTCOMES_BACK = {v: k for k, v in OUTCOMES.items()}
ASSESSMENT_STATES = {
    assessments.State.AWAITING_CONSENT: common.ASSESSMENT_STATE_AWAITING_CONSENT,
    assessments.State.IN_PROGRESS: common.ASSESSMENT_STATE_IN_PROGRESS,
    assessments.State.FAVORABLE: common.ASSESSMENT_STATE_FAVORABLE,
    assessments.State.UNFAVORABLE: common.ASSESSMENT_STATE_UNFAVORABLE,
    assessments.State.WITHDRAWN: common.ASSESSMENT_STATE_WITHDRAWN,
    assessments.State.EXPIRED: common.ASSESSMENT_STATE_EXPIRED,
    assessments.State.REASSESSMENT_DUE: common.ASSESSMENT_STATE_REASSESSMENT_DUE,
    assessments.State.AWAITING_APPROVAL: common.ASSESSMENT_STATE_AWAITING_APPROVAL,
}
ASSESSMENT_STATES_BACK = {v: k for k, v in ASSESSMENT_STATES.items()}
DECISIONS = {"favorable": common.DECISION_FAVORABLE, "unfavorable": common.DECISION_UNFAVORABLE}
DECISIONS_BACK = {v: k for k, v in DECISIONS.items()}
CREDENTIAL_STATES = {
    CredentialState.VALID: common.CREDENTIAL_STATE_VALID,
    CredentialState.SUSPENDED: common.CREDENTIAL_STATE_SUSPENDED,
    CredentialState.REVOKED: common.CREDENTIAL_STATE_REVOKED,
    CredentialState.EXPIRED: common.CREDENTIAL_STATE_EXPIRED,
}
CREDENTIAL_STATES_BACK = {v: k for k, v in CREDENTIAL_STATES.items()}
APPEAL_STATES = {
    AppealState.OPEN: common.APPEAL_STATE_OPEN,
    AppealState.UPHELD: common.APPEAL_STATE_UPHELD,
    AppealState.DISMISSED: common.APPEAL_STATE_DISMISSED,
}
APPEAL_STATES_BACK = {v: k for k, v in APPEAL_STATES.items()}


def enum(table: dict[Any, Any], value: Any, field: str, *, optional: bool = False) -> Any:
    """The domain value a wire enum names (``None`` for an unset optional one).

    Raises:
        InvalidArgumentError: a value the table does not know (or unset, unless optional).
    """
    if optional and value == 0:
        return None
    if value not in table:
        raise InvalidArgumentError(field, "is missing or not a known value")
    return table[value]


def page(request_page: common.PageRequest) -> PageRequest:
    """The page a request asks for.

    Raises:
        InvalidArgumentError: a negative size or a token this registry did not issue.
    """
    return PageRequest.parse(request_page.page_size, request_page.page_token)


def organization_pb(org: OrganizationView) -> pb.Organization:
    message = pb.Organization(
        id=org.id,
        name=org.name,
        kind=KINDS_BACK.get(org.kind, common.ORGANIZATION_KIND_UNSPECIFIED),
        country=org.country,
        created_at=ts(org.created_at),
    )
    if org.facility is not None:
        message.facility_clearance.CopyFrom(
            pb.FacilityClearance(
                clearance=common.Clearance(
                    jurisdiction=org.country,
                    level=org.facility.level,
                    categories=org.facility.categories,
                ),
                valid_until=ts(org.facility.valid_until),
                active=org.facility.active,
            )
        )
    return message


def node_pb(node: NodeView) -> pb.Node:
    return pb.Node(
        id=node.id,
        organization_id=node.organization_id,
        name=node.name,
        key_thumbprint=node.key_thumbprint,
        enrolled_at=ts(node.enrolled_at),
    )


def staff_pb(staff: StaffView) -> pb.Staff:
    return pb.Staff(
        id=staff.id,
        name=staff.name,
        role=ROLES_BACK[staff.role],
        organization_id=staff.organization_id or "",
        key_thumbprint=staff.key_thumbprint,
        disabled=staff.disabled,
    )


def person_pb(person: people.PersonView) -> pb.Person:
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
        state=ASSESSMENT_STATES[view.state],
        level=view.level,
        categories=list(view.categories),
        consent_at=ts(view.consent_at),
        findings=[
            pb.Finding(
                item=ITEMS_BACK[f.item],
                outcome=OUTCOMES_BACK[f.outcome],
                summary=f.summary,
                recorded_at=ts(f.recorded_at),
                recorded_by=f.recorded_by,
            )
            for f in view.findings
        ],
        decision=DECISIONS.get(view.decision or "", common.DECISION_UNSPECIFIED),
        reasons=list(view.reasons),
        decided_at=ts(view.decided_at),
        valid_until=ts(view.valid_until),
        opened_at=ts(view.opened_at),
        consent_by=view.consent_by or "",
        decided_by=view.decided_by or "",
        approved_by=view.approved_by or "",
        approved_at=ts(view.approved_at),
    )


def optional_notice_pb(view: assessments.NoticeView | None) -> pb.Notice | None:
    return None if view is None else notice_pb(view)


def notice_pb(view: assessments.NoticeView) -> pb.Notice:
    return pb.Notice(
        id=view.id,
        assessment_id=view.assessment_id,
        decision=DECISIONS.get(view.decision, common.DECISION_UNSPECIFIED),
        reasons=list(view.reasons),
        appeal_instructions=view.appeal_instructions,
        appeal_deadline=ts(view.appeal_deadline),
        issued_at=ts(view.issued_at),
    )


def appeal_pb(view: AppealView) -> pb.Appeal:
    return pb.Appeal(
        id=view.id,
        assessment_id=view.assessment_id,
        state=APPEAL_STATES[view.state],
        grounds=view.grounds,
        resolution=view.resolution or "",
        filed_at=ts(view.filed_at),
        resolved_at=ts(view.resolved_at),
        resolved_by=view.resolved_by or "",
    )


def credential_pb(credential: CredentialView) -> pb.CredentialRecord:
    return pb.CredentialRecord(
        id=credential.id,
        person_id=credential.person_id or "",
        organization_id=credential.organization_id or "",
        kind=credential.kind,
        state=CREDENTIAL_STATES[credential.state],
        clearance=common.Clearance(
            jurisdiction=credential.jurisdiction,
            level=credential.level,
            categories=credential.categories,
        ),
        status_list_uri=credential.status_list_uri,
        status_index=credential.status_index,
        issued_at=ts(credential.issued_at),
        expires_at=ts(credential.expires_at),
        state_reason=credential.state_reason or "",
        holder_key_thumbprint=credential.holder_thumbprint,
    )


AGREEMENT_STATES = {
    AgreementState.IN_FORCE: common.AGREEMENT_STATE_IN_FORCE,
    AgreementState.TERMINATED: common.AGREEMENT_STATE_TERMINATED,
}
VISIT_KINDS = {
    pb.VISIT_KIND_ONE_TIME: "one_time",
    pb.VISIT_KIND_RECURRING: "recurring",
    pb.VISIT_KIND_EMERGENCY: "emergency",
}


def agreement_pb(view: AgreementView) -> pb.AgreementRecord:
    state = AGREEMENT_STATES[view.state]
    if view.state is AgreementState.IN_FORCE and view.expired:
        state = common.AGREEMENT_STATE_EXPIRED
    record = pb.AgreementRecord(
        id=view.id,
        partner_jurisdiction=view.partner_jurisdiction,
        partner_endpoint=view.partner_endpoint,
        state=state,
        document=view.document,
        partner_problem=view.problem or "",
    )
    if view.last_sync:
        record.last_partner_sync.seconds = view.last_sync
    return record


def audit_event_pb(event: AuditEventView) -> pb.AuditEvent:
    return pb.AuditEvent(
        sequence=event.seq,
        at=ts(event.at),
        actor=event.actor,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        details_json=event.details,
        hash=event.hash,
        previous_hash=event.prev_hash,
    )


def chain_report_pb(report: ChainReport) -> pb.VerifyAuditChainResponse:
    return pb.VerifyAuditChainResponse(
        intact=report.intact,
        events_checked=report.events_checked,
        broken_at=report.broken_at,
        problem=report.problem,
        head_hash=report.head_hash,
    )


def keyset_page(request_page: common.PageRequest) -> KeysetPage:
    """The page of a listing ordered by id that a request asks for.

    Raises:
        InvalidArgumentError: a negative size or a token this registry did not issue.
    """
    return KeysetPage.parse(request_page.page_size, request_page.page_token)


def issuance_fact_pb(fact: IssuanceFact) -> pb.IssuanceFact:
    decision = fact.decision
    facts = pb.DecisionFacts(found=False)
    if decision is not None:
        state = assessments.State(decision.state)
        facts = pb.DecisionFacts(
            found=True,
            state=ASSESSMENT_STATES.get(state, common.ASSESSMENT_STATE_UNSPECIFIED),
            decision=DECISIONS.get(decision.decision or "", common.DECISION_UNSPECIFIED),
            level=decision.level,
            consent_at=ts(decision.consent_at),
            consent_by=decision.consent_by or "",
            items=[ITEMS_BACK[item] for item in decision.items if item in ITEMS_BACK],
            investigators=list(decision.investigators),
            decided_by=decision.decided_by or "",
            decided_at=ts(decision.decided_at),
            approved_by=decision.approved_by or "",
            approved_at=ts(decision.approved_at),
        )
    return pb.IssuanceFact(
        credential_id=fact.credential_id,
        assessment_id=fact.assessment_id or "",
        organization_id=fact.organization_id or "",
        level=fact.level,
        issued_at=ts(fact.issued_at),
        decision=facts,
    )


def credential_state_pb(fact: CredentialStateFact) -> pb.CredentialStateFact:
    return pb.CredentialStateFact(
        credential_id=fact.credential_id,
        kind=fact.kind,
        state=CREDENTIAL_STATES[fact.state],
        cause=fact.cause or "",
        reason_recorded=fact.reason_recorded,
    )
