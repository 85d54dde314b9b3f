r"""The aptitude assessment: consent first, seven findings, a reasoned decision, notice, appeal.

The workflow, enforced here and in :mod:`.decisions` (a step out of order is
a :class:`~clearance.errors.WorkflowError`)::

    awaiting_consent --consent--> in_progress --decide--> favorable | unfavorable
          |                         |   ^  \                ^           |
          |                         |   |   +--decide (Top Secret)     appeal (oversight)
          |                         |   |          v         |           |
          |                         |   +--sent back-- awaiting_approval  upheld: back to in_progress
          |                         |             --approve (2nd adjudicator)--+
          +------withdraw-----------+-------withdraw---------> withdrawn (credentials suspended)

An investigator records the consent and the findings; an adjudicator who
recorded none of them decides (:mod:`registry.policy`, separation of duties).

Findings exist only for the seven items of the law (:class:`Item`): the
schema itself keeps the scope from creeping. A favorable assessment is valid
for ten years (configurable); in its last 180 days it reads as
``reassessment_due``, then ``expired``.

Who sees what: adjudicators see everything; an organization's security
officer sees the state and decision of their own people, never findings or
reasons (those go to the person in the notice); oversight sees findings only
of assessments under appeal.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError, WorkflowError
from registry.context import RegistryContext
from registry.policy import Caller, Role, principal_of, require_scope
from registry.store import audit
from registry.store.columns import dump_list, load_list, new_id
from registry.store.idempotency import IdempotencyKey
from registry.store.lookup import existing
from registry.store.models import Appeal, Assessment, AuditEvent, Finding, Notice
from registry.workflows import lifecycle
from registry.workflows.arguments import Page, PageRequest, check_level_and_categories, require_text
from registry.workflows.people import get_person

REASSESSMENT_WINDOW = 180 * 86400


class Item(enum.StrEnum):
    """The seven investigation items, and nothing else."""

    FAMILY_AND_COHABITANTS = "family_and_cohabitants"
    CRIMINAL_AND_DISCIPLINARY_HISTORY = "criminal_and_disciplinary_history"
    INFORMATION_HANDLING_VIOLATIONS = "information_handling_violations"
    DRUG_ABUSE = "drug_abuse"
    MENTAL_ILLNESS = "mental_illness"
    ALCOHOL_MODERATION = "alcohol_moderation"
    FINANCIAL_SITUATION = "financial_situation"


class Outcome(enum.StrEnum):
    NO_CONCERN = "no_concern"
    MITIGATED = "mitigated"
    CONCERN = "concern"


class State(enum.StrEnum):
    AWAITING_CONSENT = "awaiting_consent"
    IN_PROGRESS = "in_progress"
    FAVORABLE = "favorable"
    UNFAVORABLE = "unfavorable"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    REASSESSMENT_DUE = "reassessment_due"
    AWAITING_APPROVAL = "awaiting_approval"


RUNNING = (State.AWAITING_CONSENT.value, State.IN_PROGRESS.value, State.AWAITING_APPROVAL.value)
"""Stored states of an assessment still under way: a person has at most one."""
INVESTIGATION_ACTIONS = ("assessment.consent", "assessment.finding")
"""The audit actions whose actors investigated an assessment."""


@dataclass(frozen=True)
class FindingView:
    item: str
    outcome: str
    summary: str
    recorded_at: int
    recorded_by: str


@dataclass(frozen=True)
class AssessmentView:
    """An assessment as one caller may see it."""

    id: str
    person_id: str
    organization_id: str | None
    state: State
    level: str
    categories: tuple[str, ...]
    opened_at: int
    consent_at: int | None
    decision: str | None
    reasons: tuple[str, ...]
    decided_at: int | None
    valid_until: int | None
    findings: tuple[FindingView, ...]
    consent_by: str | None = None
    decided_by: str | None = None
    approved_by: str | None = None
    approved_at: int | None = None


@dataclass(frozen=True)
class NoticeView:
    id: str
    assessment_id: str
    decision: str
    reasons: tuple[str, ...]
    appeal_instructions: str
    appeal_deadline: int | None
    issued_at: int


def effective_state(assessment: Assessment, now: int) -> State:
    state = State(assessment.state)
    if state is State.FAVORABLE and assessment.valid_until is not None:
        if assessment.valid_until <= now:
            return State.EXPIRED
        if assessment.valid_until - now <= REASSESSMENT_WINDOW:
            return State.REASSESSMENT_DUE
    return state


def get_assessment_row(session: Session, assessment_id: str, *, lock: bool = False) -> Assessment:
    """Raises NotFoundError for an unknown id."""
    return existing(session, Assessment, assessment_id, "assessment", lock=lock)


def investigators(session: Session, assessment_ids: Collection[str]) -> dict[str, set[str]]:
    """The staff ids that ever recorded the consent or a finding of each assessment, from the audit log.

    The audit log, not the findings table: a finding recorded again keeps only
    its last author there, and whoever investigated once stays an investigator.
    """
    out: dict[str, set[str]] = {assessment_id: set() for assessment_id in assessment_ids}
    if not out:
        return out
    rows = session.execute(
        select(AuditEvent.object_id, AuditEvent.actor).where(
            AuditEvent.object_id.in_(list(out)), AuditEvent.action.in_(INVESTIGATION_ACTIONS)
        )
    )
    for object_id, actor in rows:
        out[object_id].add(principal_of(actor))
    return out


def _view(
    session: Session, assessment: Assessment, now: int, *, with_findings: bool, with_reasons: bool
) -> AssessmentView:
    person = get_person(session, assessment.person_id)
    findings: tuple[FindingView, ...] = ()
    if with_findings:
        rows = session.execute(
            select(Finding).where(Finding.assessment_id == assessment.id).order_by(Finding.id)
        ).scalars()
        findings = tuple(
            FindingView(f.item, f.outcome, f.summary, f.recorded_at, f.recorded_by) for f in rows
        )
    return AssessmentView(
        id=assessment.id,
        person_id=assessment.person_id,
        organization_id=person.organization_id,
        state=effective_state(assessment, now),
        level=assessment.level,
        categories=load_list(assessment.categories),
        opened_at=assessment.opened_at,
        consent_at=assessment.consent_at,
        decision=assessment.decision,
        reasons=load_list(assessment.reasons) if with_reasons else (),
        decided_at=assessment.decided_at,
        valid_until=assessment.valid_until,
        findings=findings,
        consent_by=assessment.consent_by,
        decided_by=assessment.decided_by,
        approved_by=assessment.approved_by,
        approved_at=assessment.approved_at,
    )


def view_for(session: Session, caller: Caller, assessment: Assessment, now: int) -> AssessmentView:
    """Apply the who-sees-what rule of the module docstring."""
    if caller.role is Role.SECURITY_OFFICER:
        view = _view(session, assessment, now, with_findings=False, with_reasons=False)
        require_scope(caller, view.organization_id)
        return view
    if caller.role is Role.OVERSIGHT:
        _require_appeal(session, assessment)
    return _view(session, assessment, now, with_findings=True, with_reasons=True)


def _require_appeal(session: Session, assessment: Assessment) -> None:
    """Oversight reads an assessment's findings and reasons only once it is under appeal.

    Raises:
        PermissionDeniedError: no appeal was ever filed against it.
    """
    appealed = session.execute(select(Appeal.id).where(Appeal.assessment_id == assessment.id)).first()
    if appealed is None:
        raise PermissionDeniedError("oversight sees the findings of assessments under appeal only")


def open_assessment(
    ctx: RegistryContext,
    caller: Caller,
    *,
    person_id: str,
    level: str,
    categories: list[str],
    idempotency_key: str = "",
) -> AssessmentView:
    check_level_and_categories(ctx.config, level, categories)
    idempotency = IdempotencyKey.of(
        caller.principal,
        idempotency_key,
        "open_assessment",
        {"person": person_id, "level": level, "categories": categories},
    )
    now = ctx.now()
    with ctx.db.transaction() as session:
        earlier = idempotency.earlier(session)
        if earlier is not None:
            return view_for(session, caller, get_assessment_row(session, earlier), now)
        person = get_person(session, person_id)
        require_scope(caller, person.organization_id)
        running = session.execute(
            select(Assessment.id).where(Assessment.person_id == person.id, Assessment.state.in_(RUNNING))
        ).first()
        if running is not None:
            raise WorkflowError(f"person {person.id} already has an open assessment ({running[0]})")
        assessment = Assessment(
            id=new_id("asm"),
            person_id=person.id,
            state=State.AWAITING_CONSENT.value,
            level=level,
            categories=dump_list(categories),
            opened_at=now,
            opened_by=caller.principal,
        )
        session.add(assessment)
        session.flush()
        idempotency.remember(session, assessment.id, now)
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="assessment.open",
            object_type="assessment",
            object_id=assessment.id,
            details={"person_id": person.id, "level": level, "categories": categories},
        )
        return view_for(session, caller, assessment, now)


def record_consent(
    ctx: RegistryContext, caller: Caller, *, assessment_id: str, evidence: str
) -> AssessmentView:
    evidence = require_text(evidence, "evidence", max_length=500)
    now = ctx.now()
    with ctx.db.transaction() as session:
        assessment = get_assessment_row(session, assessment_id, lock=True)
        require_scope(caller, get_person(session, assessment.person_id).organization_id)
        if assessment.state != State.AWAITING_CONSENT.value:
            raise WorkflowError(f"assessment {assessment.id} is {assessment.state}, not awaiting consent")
        assessment.state = State.IN_PROGRESS.value
        assessment.consent_at = now
        assessment.consent_evidence = evidence
        assessment.consent_by = caller.principal
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="assessment.consent",
            object_type="assessment",
            object_id=assessment.id,
            details={"evidence": evidence},
        )
        return view_for(session, caller, assessment, now)


def withdraw_consent(
    ctx: RegistryContext, caller: Caller, *, assessment_id: str, reason: str
) -> tuple[AssessmentView, int]:
    """Withdrawal stops an open assessment, or suspends the credentials a favorable one produced."""
    reason = require_text(reason, "reason", max_length=500)
    now = ctx.now()
    with ctx.db.transaction() as session:
        assessment = get_assessment_row(session, assessment_id, lock=True)
        require_scope(caller, get_person(session, assessment.person_id).organization_id)
        if assessment.state in (State.WITHDRAWN.value, State.UNFAVORABLE.value):
            raise WorkflowError(
                f"assessment {assessment.id} is {assessment.state}; there is no consent to withdraw"
            )
        suspended = 0
        if assessment.state == State.FAVORABLE.value:
            suspended = lifecycle.suspend_for_assessment(
                ctx, session, assessment.id, reason="consent withdrawn", now=now
            )
        assessment.state = State.WITHDRAWN.value
        assessment.withdrawn_at = now
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="assessment.withdraw_consent",
            object_type="assessment",
            object_id=assessment.id,
            details={"reason": reason, "suspended": suspended},
        )
        view = view_for(session, caller, assessment, now)
    return view, suspended


def record_finding(
    ctx: RegistryContext, caller: Caller, *, assessment_id: str, item: str, outcome: str, summary: str
) -> AssessmentView:
    try:
        finding_item = Item(item)
    except ValueError:
        raise InvalidArgumentError(
            "item", f"must be one of the seven items {[i.value for i in Item]}"
        ) from None
    try:
        finding_outcome = Outcome(outcome)
    except ValueError:
        raise InvalidArgumentError("outcome", f"must be one of {[o.value for o in Outcome]}") from None
    summary = require_text(summary, "summary", max_length=2000)
    now = ctx.now()
    with ctx.db.transaction() as session:
        assessment = get_assessment_row(session, assessment_id, lock=True)
        if assessment.state == State.AWAITING_CONSENT.value:
            raise WorkflowError("nothing can be recorded before the person's consent")
        if assessment.state != State.IN_PROGRESS.value:
            raise WorkflowError(f"assessment {assessment.id} is {assessment.state}; findings are closed")
        existing = session.execute(
            select(Finding).where(Finding.assessment_id == assessment.id, Finding.item == finding_item.value)
        ).scalar_one_or_none()
        if existing is None:
            session.add(
                Finding(
                    assessment_id=assessment.id,
                    item=finding_item.value,
                    outcome=finding_outcome.value,
                    summary=summary,
                    recorded_at=now,
                    recorded_by=caller.principal,
                )
            )
        else:
            existing.outcome, existing.summary = finding_outcome.value, summary
            existing.recorded_at, existing.recorded_by = now, caller.principal
        session.flush()
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="assessment.finding",
            object_type="assessment",
            object_id=assessment.id,
            details={
                "item": finding_item.value,
                "outcome": finding_outcome.value,
                "replaced": existing is not None,
            },
        )
        return view_for(session, caller, assessment, now)


def notice_view(notice: Notice) -> NoticeView:
    return NoticeView(
        notice.id,
        notice.assessment_id,
        notice.decision,
        load_list(notice.reasons),
        notice.appeal_instructions,
        notice.appeal_deadline,
        notice.issued_at,
    )


def get_assessment(ctx: RegistryContext, caller: Caller, assessment_id: str) -> AssessmentView:
    """The assessment as ``caller`` may see it.

    Raises:
        NotFoundError: unknown assessment.
        PermissionDeniedError: another organization's officer, or oversight before an appeal.
    """
    with ctx.db.transaction(readonly=True) as session:
        return view_for(session, caller, get_assessment_row(session, assessment_id), ctx.now())


def list_assessments(
    ctx: RegistryContext, *, person_id: str, state: State | None, page: PageRequest
) -> Page[AssessmentView]:
    """Assessments, oldest first, of a person, in a state; never with findings or reasons."""
    now = ctx.now()
    query = select(Assessment).order_by(Assessment.opened_at, Assessment.id)
    if person_id:
        query = query.where(Assessment.person_id == person_id)
    if state is not None:
        stored = State.FAVORABLE if state in (State.EXPIRED, State.REASSESSMENT_DUE) else state
        query = query.where(Assessment.state == stored.value)
    with ctx.db.transaction(readonly=True) as session:
        rows = session.execute(page.window(query)).scalars().all()
        # Lists never carry findings or reasons: a list is for finding work, not for reading files.
        views = [_view(session, a, now, with_findings=False, with_reasons=False) for a in rows]
    if state is not None:
        views = [v for v in views if v.state is state]
    return page.of(views, read=len(rows))


def latest_notice(session: Session, assessment_id: str) -> Notice | None:
    """The notice of the assessment's latest decision, if there was one."""
    return session.execute(
        select(Notice).where(Notice.assessment_id == assessment_id).order_by(Notice.issued_at.desc()).limit(1)
    ).scalar_one_or_none()


def get_notice(ctx: RegistryContext, caller: Caller, assessment_id: str) -> NoticeView:
    """The notice of the assessment's latest decision.

    Raises:
        NotFoundError: unknown assessment, or not decided yet.
        PermissionDeniedError: another organization's officer, or oversight before an appeal.
    """
    with ctx.db.transaction(readonly=True) as session:
        assessment = get_assessment_row(session, assessment_id)
        if caller.role is Role.SECURITY_OFFICER:
            require_scope(caller, get_person(session, assessment.person_id).organization_id)
        if caller.role is Role.OVERSIGHT:  # a notice carries the reasons: the same rule as the file
            _require_appeal(session, assessment)
        notice = latest_notice(session, assessment.id)
        if notice is None:
            raise NotFoundError(f"assessment {assessment.id} has no decision notice yet")
        return notice_view(notice)
