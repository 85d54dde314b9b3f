"""Appeals: a person contests an unfavorable decision; the oversight body rules on it.

An appeal is filed within the deadline its notice names, one at a time. An
upheld appeal sets the decision aside and reopens the assessment for new
findings and a new decision; a dismissed one leaves it as it was. Whoever
investigated, decided or approved the decision never resolves its appeal
(``own_decision_appeal``, :func:`registry.policy.require_outside_decision`),
whatever role their account holds now.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select

from clearance.errors import WorkflowError
from registry.context import RegistryContext
from registry.policy import Caller, require_outside_decision, require_scope
from registry.store import audit
from registry.store.columns import dump_list, new_id
from registry.store.lookup import existing
from registry.store.models import Appeal
from registry.workflows.arguments import Page, PageRequest, require_text
from registry.workflows.assessments import (
    AssessmentView,
    State,
    get_assessment_row,
    investigators,
    latest_notice,
    view_for,
)
from registry.workflows.people import get_person


class AppealState(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class AppealView:
    id: str
    assessment_id: str
    state: AppealState
    grounds: str
    resolution: str | None
    filed_at: int
    resolved_at: int | None
    resolved_by: str | None


def _appeal_view(appeal: Appeal) -> AppealView:
    return AppealView(
        appeal.id,
        appeal.assessment_id,
        AppealState(appeal.state),
        appeal.grounds,
        appeal.resolution,
        appeal.filed_at,
        appeal.resolved_at,
        appeal.resolved_by,
    )


def file_appeal(ctx: RegistryContext, caller: Caller, *, assessment_id: str, grounds: str) -> AppealView:
    """Appeal an unfavorable decision.

    Raises:
        InvalidArgumentError: no grounds given.
        NotFoundError: unknown assessment.
        PermissionDeniedError: another organization's officer.
        WorkflowError: not unfavorable, past the deadline, or an appeal is already open.
    """
    grounds = require_text(grounds, "grounds", max_length=5000)
    now = ctx.now()
    with ctx.db.transaction() as session:
        assessment = get_assessment_row(session, assessment_id, lock=True)
        require_scope(caller, get_person(session, assessment.person_id).organization_id)
        if assessment.state != State.UNFAVORABLE.value:
            raise WorkflowError("only an unfavorable decision can be appealed")
        notice = latest_notice(session, assessment.id)
        if notice is not None and notice.appeal_deadline is not None and now > notice.appeal_deadline:
            raise WorkflowError("the appeal deadline has passed")
        if session.execute(
            select(Appeal.id).where(
                Appeal.assessment_id == assessment.id, Appeal.state == AppealState.OPEN.value
            )
        ).first():
            raise WorkflowError("an appeal of this decision is already open")
        appeal = Appeal(
            id=new_id("apl"),
            assessment_id=assessment.id,
            state=AppealState.OPEN.value,
            grounds=grounds,
            filed_at=now,
            filed_by=caller.principal,
        )
        session.add(appeal)
        session.flush()
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="appeal.file",
            object_type="appeal",
            object_id=appeal.id,
            details={"assessment_id": assessment.id},
        )
        return _appeal_view(appeal)


def resolve_appeal(
    ctx: RegistryContext, caller: Caller, *, appeal_id: str, uphold: bool, resolution: str
) -> tuple[AppealView, AssessmentView]:
    """Oversight's ruling. Upheld: the decision is set aside and the assessment reopened.

    Raises:
        InvalidArgumentError: no resolution given.
        NotFoundError: unknown appeal.
        PermissionDeniedError: ``own_decision_appeal``: the caller took part in the decision.
        WorkflowError: the appeal was already resolved.
    """
    resolution = require_text(resolution, "resolution", max_length=5000)
    now = ctx.now()
    with ctx.db.transaction() as session:
        appeal = existing(session, Appeal, appeal_id, "appeal", lock=True)
        if appeal.state != AppealState.OPEN.value:
            raise WorkflowError(f"appeal {appeal.id} is already {appeal.state}")
        assessment = get_assessment_row(session, appeal.assessment_id, lock=True)
        participants = investigators(session, [assessment.id])[assessment.id]
        participants |= {p for p in (assessment.decided_by, assessment.approved_by) if p}
        require_outside_decision(caller, participants)
        appeal.state = (AppealState.UPHELD if uphold else AppealState.DISMISSED).value
        appeal.resolution, appeal.resolved_at, appeal.resolved_by = resolution, now, caller.principal
        if uphold:
            assessment.state = State.IN_PROGRESS.value
            assessment.decision = None
            assessment.decided_at = assessment.decided_by = None
            assessment.approved_at = assessment.approved_by = None
            assessment.reasons = dump_list([f"set aside on appeal {appeal.id}"])
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="appeal.resolve",
            object_type="appeal",
            object_id=appeal.id,
            details={"uphold": uphold, "assessment_id": assessment.id},
        )
        return _appeal_view(appeal), view_for(session, caller, assessment, now)


def list_appeals(ctx: RegistryContext, *, state: AppealState | None, page: PageRequest) -> Page[AppealView]:
    """Appeals, oldest first, in a state."""
    query = select(Appeal).order_by(Appeal.filed_at, Appeal.id)
    if state is not None:
        query = query.where(Appeal.state == state.value)
    return page.read(ctx.db, query, _appeal_view)
