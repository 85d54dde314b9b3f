"""Deciding an assessment, and the second adjudicator's approval of a Top Secret decision.

An adjudicator decides once all seven items have findings, and only if they
recorded neither the consent nor any finding of the assessment
(``investigator_cannot_decide``). A decision at the jurisdiction's highest
level does not take effect at once: it waits, as ``awaiting_approval``,
until another adjudicator approves it (``second_adjudicator_required`` for
the decider; the investigators are refused as above). Approved, it takes
effect: the clearance's ten years start and the notice is written. Sent
back, the assessment is in progress again and a new decision is needed.

Each step's audit event carries what the monthly statistics count (level,
decision, consent time, the items that raised something), so the report is
computed from the audit log alone and anyone holding the log can recount it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.errors import InvalidArgumentError, WorkflowError
from registry.context import RegistryContext
from registry.policy import (
    Caller,
    needs_approval,
    require_not_investigator,
    require_second_adjudicator,
)
from registry.store import audit
from registry.store.columns import dump_list, new_id
from registry.store.models import Assessment, Finding, Notice
from registry.workflows.arguments import require_text
from registry.workflows.assessments import (
    AssessmentView,
    Item,
    NoticeView,
    Outcome,
    State,
    get_assessment_row,
    investigators,
    notice_view,
    view_for,
)

DECISIONS = ("favorable", "unfavorable")


def decide(
    ctx: RegistryContext, caller: Caller, *, assessment_id: str, decision: str, reasons: list[str]
) -> tuple[AssessmentView, NoticeView | None]:
    """Decide an assessment; the notice, or None while a Top Secret decision awaits approval.

    Raises:
        InvalidArgumentError: no such decision, or no reasons.
        NotFoundError: unknown assessment.
        PermissionDeniedError: ``investigator_cannot_decide``.
        WorkflowError: no consent, not in progress, or findings missing.
    """
    if decision not in DECISIONS:
        raise InvalidArgumentError("decision", "must be favorable or unfavorable")
    reasons = [require_text(r, "reasons", max_length=1000) for r in reasons]
    if not reasons:
        raise InvalidArgumentError("reasons", "a decision states its reasons")
    now = ctx.now()
    with ctx.db.transaction() as session:
        assessment = get_assessment_row(session, assessment_id, lock=True)
        require_not_investigator(caller, investigators(session, [assessment.id])[assessment.id])
        if assessment.state == State.AWAITING_CONSENT.value:
            raise WorkflowError("no decision without the person's consent")
        if assessment.state != State.IN_PROGRESS.value:
            raise WorkflowError(f"assessment {assessment.id} is {assessment.state}, not in progress")
        outcomes = _outcomes(session, assessment.id)
        missing = [i.value for i in Item if i.value not in outcomes]
        if missing:
            raise WorkflowError(f"findings missing for {missing}")
        assessment.decision = decision
        assessment.reasons = dump_list(reasons)
        assessment.decided_at, assessment.decided_by = now, caller.principal
        assessment.approved_at = assessment.approved_by = None
        pending = needs_approval(ctx.config.levels, assessment.level)
        notice = None
        if pending:
            assessment.state = State.AWAITING_APPROVAL.value
            assessment.valid_until = None
        else:
            notice = _take_effect(ctx, session, assessment, now)
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="assessment.decide",
            object_type="assessment",
            object_id=assessment.id,
            details={
                **_counted(assessment, outcomes),
                "awaiting_approval": pending,
                **_effect(assessment, notice),
            },
        )
        return view_for(session, caller, assessment, now), notice


def approve(
    ctx: RegistryContext, caller: Caller, *, assessment_id: str, approve: bool, comment: str
) -> tuple[AssessmentView, NoticeView | None]:
    """A second adjudicator approves a pending decision (it takes effect) or sends it back.

    Raises:
        InvalidArgumentError: no comment.
        NotFoundError: unknown assessment.
        PermissionDeniedError: ``second_adjudicator_required`` for the decider,
            ``investigator_cannot_decide`` for an investigator of the assessment.
        WorkflowError: no decision awaits approval.
    """
    comment = require_text(comment, "comment", max_length=1000)
    now = ctx.now()
    with ctx.db.transaction() as session:
        assessment = get_assessment_row(session, assessment_id, lock=True)
        require_not_investigator(caller, investigators(session, [assessment.id])[assessment.id])
        require_second_adjudicator(caller, assessment.decided_by)
        if assessment.state != State.AWAITING_APPROVAL.value:
            raise WorkflowError(
                f"assessment {assessment.id} is {assessment.state}; no decision awaits approval"
            )
        outcomes = _outcomes(session, assessment.id)
        counted = {**_counted(assessment, outcomes), "decided_by": assessment.decided_by}
        notice = None
        if approve:
            assessment.approved_at, assessment.approved_by = now, caller.principal
            notice = _take_effect(ctx, session, assessment, now)
        else:
            assessment.state = State.IN_PROGRESS.value
            assessment.decision = None
            assessment.decided_at = assessment.decided_by = None
            assessment.reasons = dump_list([f"decision sent back by a second adjudicator: {comment}"])
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="assessment.approve",
            object_type="assessment",
            object_id=assessment.id,
            details={**counted, "approved": approve, **_effect(assessment, notice)},
        )
        return view_for(session, caller, assessment, now), notice


def _outcomes(session: Session, assessment_id: str) -> dict[str, str]:
    rows = session.execute(
        select(Finding.item, Finding.outcome).where(Finding.assessment_id == assessment_id)
    ).all()
    return {item: outcome for item, outcome in rows}


def _counted(assessment: Assessment, outcomes: dict[str, str]) -> dict[str, object]:
    """What the statistics count of a decision (no personal data: a level, times, item names)."""
    return {
        "decision": assessment.decision,
        "level": assessment.level,
        "consent_at": assessment.consent_at,
        "raised": sorted(item for item, outcome in outcomes.items() if outcome != Outcome.NO_CONCERN.value),
    }


def _effect(assessment: Assessment, notice: NoticeView | None) -> dict[str, object]:
    """Whether the decision took effect with this event (the statistics count it then), and its notice."""
    if notice is None:
        return {"in_effect": False}
    return {"in_effect": True, "notice_id": notice.id, "valid_until": assessment.valid_until}


def _take_effect(ctx: RegistryContext, session: Session, assessment: Assessment, now: int) -> NoticeView:
    """The decision takes effect now: its state, the clearance's validity, and the notice to the person."""
    decision = assessment.decision or ""
    assessment.state = decision
    assessment.valid_until = now + ctx.config.clearance_validity if decision == "favorable" else None
    favorable = decision == "favorable"
    deadline = None if favorable else now + ctx.config.appeal_window
    instructions = (
        "You have been found suitable to handle designated information. You may withdraw your consent "
        "at any time through your organization's security officer; your clearance is then suspended."
        if favorable
        else "You may appeal this decision within the deadline, stating your grounds; appeals are "
        "reviewed by the independent oversight body, which can set the decision aside. "
        "You may also ask for the personal data this decision used to be corrected."
    )
    notice = Notice(
        id=new_id("ntc"),
        assessment_id=assessment.id,
        decision=decision,
        reasons=assessment.reasons or "[]",
        appeal_instructions=instructions,
        appeal_deadline=deadline,
        issued_at=now,
    )
    session.add(notice)
    session.flush()
    return notice_view(notice)
