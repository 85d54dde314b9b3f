"""Credential states after issuance: suspend, reinstate, revoke, and their causes.

Every change is one transaction: the credential's state, its bit in the
status list (with the signed delta the nodes receive), and the audit event.
A revoked credential never comes back. A suspension remembers its cause
(staff, consent, affiliation, facility), and reinstatement is refused while
the cause still holds.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from clearance.errors import WorkflowError
from clearance.statuslist import Status
from registry.context import RegistryContext
from registry.policy import Caller, require_scope
from registry.store import audit, statuslists
from registry.store.lookup import existing
from registry.store.models import Assessment, Credential, Organization, Person
from registry.workflows.arguments import Page, PageRequest, of_organization, require_text
from registry.workflows.credentials import CredentialState, CredentialView, views
from registry.workflows.organizations import OrganizationView

_STATUS = {
    CredentialState.VALID: Status.VALID,
    CredentialState.SUSPENDED: Status.SUSPENDED,
    CredentialState.REVOKED: Status.REVOKED,
}


def get_credential(session: Session, credential_id: str, *, lock: bool = False) -> Credential:
    """Raises NotFoundError for an unknown id."""
    return existing(session, Credential, credential_id, "credential", lock=lock)


def apply_states(
    ctx: RegistryContext,
    session: Session,
    credentials: list[Credential],
    state: CredentialState,
    *,
    cause: str | None,
    reason: str,
    now: int,
) -> None:
    """Set ``state`` on each credential and publish one delta per status list."""
    per_list: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for credential in credentials:
        credential.state = state.value
        credential.state_reason = reason
        credential.suspended_by = cause if state is CredentialState.SUSPENDED else None
        per_list[credential.status_list_id].append((credential.status_index, int(_STATUS[state])))
    for list_id, updates in per_list.items():
        statuslists.set_statuses(
            session,
            list_id,
            updates,
            key=ctx.keys.issuing_key,
            now=now,
            lifetime=ctx.config.status_list_lifetime,
        )


def read_credential(ctx: RegistryContext, caller: Caller, credential_id: str) -> CredentialView:
    """Raises NotFoundError, or PermissionDeniedError for another organization's officer."""
    with ctx.db.transaction(readonly=True) as session:
        credential = get_credential(session, credential_id)
        require_scope(caller, credential.organization_id)
        [view] = views(session, [credential], ctx.now())
        return view


def change_state(
    ctx: RegistryContext, caller: Caller, *, credential_id: str, target: CredentialState, reason: str
) -> CredentialView:
    """Suspend, reinstate (target VALID) or revoke one credential.

    Raises:
        NotFoundError: unknown credential.
        WorkflowError: revoked credentials stay revoked; reinstating needs a
            suspended credential whose cause no longer holds.
    """
    reason = require_text(reason, "reason", max_length=500)
    now = ctx.now()
    with ctx.db.transaction() as session:
        credential = get_credential(session, credential_id, lock=True)
        require_scope(caller, credential.organization_id)
        current = CredentialState(credential.state)
        if current is CredentialState.REVOKED:
            raise WorkflowError(f"credential {credential.id} is revoked; a revoked credential cannot change")
        if target is CredentialState.VALID:
            if current is not CredentialState.SUSPENDED:
                raise WorkflowError(f"credential {credential.id} is not suspended")
            _check_cause_resolved(session, credential, now)
        elif target is current:
            raise WorkflowError(f"credential {credential.id} is already {current.value}")
        if credential.expires_at <= now and target is not CredentialState.REVOKED:
            raise WorkflowError(f"credential {credential.id} has expired")
        apply_states(ctx, session, [credential], target, cause="staff", reason=reason, now=now)
        action = {
            CredentialState.VALID: "credential.reinstate",
            CredentialState.SUSPENDED: "credential.suspend",
            CredentialState.REVOKED: "credential.revoke",
        }[target]
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action=action,
            object_type="credential",
            object_id=credential.id,
            details={"reason": reason, "from": current.value},
        )
        ctx.counters.add(action)
        [view] = views(session, [credential], now)
        return view


def _check_cause_resolved(session: Session, credential: Credential, now: int) -> None:
    if credential.kind == "facility":
        org = session.get(Organization, credential.organization_id)
        if org is None or not org.facility_active or (org.facility_valid_until or 0) <= now:
            raise WorkflowError("the organization no longer holds a facility clearance")
        return
    person = session.get(Person, credential.person_id) if credential.person_id else None
    if person is None or person.organization_id != credential.organization_id:
        raise WorkflowError("the person is no longer affiliated with the credential's organization")
    org = session.get(Organization, credential.organization_id)
    if org is None or not org.facility_active or (org.facility_valid_until or 0) <= now:
        raise WorkflowError("the person's organization no longer holds a facility clearance")
    assessment = session.get(Assessment, credential.assessment_id) if credential.assessment_id else None
    if assessment is None or assessment.state != "favorable" or assessment.withdrawn_at is not None:
        raise WorkflowError("the assessment is no longer favorable or consent was withdrawn")


def _valid_credentials(session: Session, *conditions: ColumnElement[bool]) -> list[Credential]:
    return list(
        session.execute(
            select(Credential)
            .where(Credential.state == CredentialState.VALID.value, *conditions)
            .with_for_update()
        )
        .scalars()
        .all()
    )


def suspend_for_person(
    ctx: RegistryContext, session: Session, person_id: str, *, cause: str, reason: str, now: int
) -> int:
    """Suspend every valid credential of a person (in the caller's transaction)."""
    credentials = _valid_credentials(session, Credential.person_id == person_id)
    if credentials:
        apply_states(
            ctx, session, credentials, CredentialState.SUSPENDED, cause=cause, reason=reason, now=now
        )
    return len(credentials)


def suspend_for_assessment(
    ctx: RegistryContext, session: Session, assessment_id: str, *, reason: str, now: int
) -> int:
    credentials = _valid_credentials(session, Credential.assessment_id == assessment_id)
    if credentials:
        apply_states(
            ctx, session, credentials, CredentialState.SUSPENDED, cause="consent", reason=reason, now=now
        )
    return len(credentials)


def withdraw_facility_clearance(
    ctx: RegistryContext, caller: Caller, *, organization_id: str, reason: str
) -> tuple[OrganizationView, int]:
    """Withdraw an organization's facility clearance.

    Its facility credentials are revoked and its people's credentials are
    suspended (they come back if the clearance is granted again and staff
    reinstate them).
    """
    reason = require_text(reason, "reason", max_length=500)
    now = ctx.now()
    with ctx.db.transaction() as session:
        org = existing(session, Organization, organization_id, "organization")
        if not org.facility_active:
            raise WorkflowError(f"{org.name} holds no facility clearance")
        org.facility_active = False
        facility = _valid_credentials(
            session, Credential.organization_id == org.id, Credential.kind == "facility"
        )
        personnel = _valid_credentials(
            session, Credential.organization_id == org.id, Credential.kind == "personnel"
        )
        if facility:
            apply_states(ctx, session, facility, CredentialState.REVOKED, cause=None, reason=reason, now=now)
        if personnel:
            apply_states(
                ctx, session, personnel, CredentialState.SUSPENDED, cause="facility", reason=reason, now=now
            )
        audit.append(
            session,
            at=now,
            actor=caller.label,
            action="facility.withdraw",
            object_type="organization",
            object_id=org.id,
            details={
                "reason": reason,
                "suspended": len(personnel),
                "revoked_facility_credentials": len(facility),
            },
        )
        return OrganizationView.of(org), len(personnel)


def list_credentials(
    ctx: RegistryContext,
    caller: Caller,
    *,
    person_id: str,
    organization_id: str,
    state: CredentialState | None,
    page: PageRequest,
) -> Page[CredentialView]:
    """Credentials, oldest first, of a person, an organization (the officer's own for an officer), in a state.

    Raises:
        PermissionDeniedError: an officer naming another organization.
    """
    now = ctx.now()
    query = select(Credential).order_by(Credential.issued_at, Credential.id)
    query = of_organization(query, Credential.organization_id, caller, organization_id)
    if person_id:
        query = query.where(Credential.person_id == person_id)
    if state is CredentialState.EXPIRED:
        query = query.where(Credential.state == CredentialState.VALID.value, Credential.expires_at <= now)
    elif state is not None:
        query = query.where(Credential.state == state.value)
    with ctx.db.transaction(readonly=True) as session:
        rows = list(session.execute(page.window(query)).scalars())
        return page.of(views(session, rows, now))
