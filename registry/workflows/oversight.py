"""What oversight reads: the audit log and aggregate counts, never personal data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from clearance.errors import InvalidArgumentError
from registry.context import RegistryContext
from registry.store import audit
from registry.store.models import Appeal, Assessment, AuditEvent, Credential, Node, Organization, Person

MAX_EVENTS = 1000
DEFAULT_EVENTS = 100


@dataclass(frozen=True)
class AuditEventView:
    """One event of the audit log, with the hashes that chain it to the one before."""

    seq: int
    at: int
    actor: str
    action: str
    object_type: str
    object_id: str
    details: str
    """Canonical JSON, never personal data."""
    hash: str
    prev_hash: str

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventView:
        return cls(
            event.seq,
            event.at,
            event.actor,
            event.action,
            event.object_type,
            event.object_id,
            event.details,
            event.hash,
            event.prev_hash,
        )


def list_events(
    ctx: RegistryContext, *, after: int, action: str, object_id: str, limit: int
) -> list[AuditEventView]:
    """Events after sequence ``after``, oldest first, of one action or object if named.

    Raises:
        InvalidArgumentError: a negative ``after`` or a ``limit`` out of bounds.
    """
    if after < 0:
        raise InvalidArgumentError("after_sequence", "must not be negative")
    if not 0 <= limit <= MAX_EVENTS:
        raise InvalidArgumentError("limit", f"must be between 0 and {MAX_EVENTS}")
    query = (
        select(AuditEvent)
        .where(AuditEvent.seq > after)
        .order_by(AuditEvent.seq)
        .limit(limit or DEFAULT_EVENTS)
    )
    if action:
        query = query.where(AuditEvent.action == action)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    with ctx.db.transaction(readonly=True) as session:
        return [AuditEventView.of(event) for event in session.execute(query).scalars()]


def verify_chain(ctx: RegistryContext) -> audit.ChainReport:
    with ctx.db.transaction(readonly=True) as session:
        return audit.verify_chain(session)


def counts(ctx: RegistryContext) -> dict[str, int]:
    """Aggregate counts by state: enough to oversee the system, too coarse to identify anyone."""
    now = ctx.now()
    out: dict[str, int] = {}
    with ctx.db.transaction(readonly=True) as session:
        out["organizations"] = session.execute(select(func.count()).select_from(Organization)).scalar_one()
        out["organizations.facility_active"] = session.execute(
            select(func.count()).select_from(Organization).where(Organization.facility_active.is_(True))
        ).scalar_one()
        out["nodes"] = session.execute(select(func.count()).select_from(Node)).scalar_one()
        out["people"] = session.execute(select(func.count()).select_from(Person)).scalar_one()
        for state, n in session.execute(select(Assessment.state, func.count()).group_by(Assessment.state)):
            out[f"assessments.{state}"] = n
        for state, n in session.execute(select(Appeal.state, func.count()).group_by(Appeal.state)):
            out[f"appeals.{state}"] = n
        for kind, state, n in session.execute(
            select(Credential.kind, Credential.state, func.count())
            .where(Credential.expires_at > now)
            .group_by(Credential.kind, Credential.state)
        ):
            out[f"credentials.{kind}.{state}"] = n
        out["credentials.expired"] = session.execute(
            select(func.count()).select_from(Credential).where(Credential.expires_at <= now)
        ).scalar_one()
        out["audit.events"] = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    return out
