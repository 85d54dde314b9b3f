"""What the oversight monitor checks the registry against: process facts, never personal data.

Two listings, for the oversight role only (:mod:`registry.policy`):

* each personnel credential with the facts of the decision it was issued
  from, as the registry's tables hold them: the assessment's state, decision
  and level, when consent was recorded and by whom, which of the seven items
  have a finding, who investigated (from the audit log), who decided and who
  approved. Staff ids, levels, item names and times: nothing about the person.
* each credential that is not valid, with its cause and whether a reason was
  recorded (never the reason's text, which may speak of the person).

Both are read in pages ordered by credential id (the page token is the last
id of the page before), so a walk over ten million credentials costs one
index range per page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from clearance.errors import InvalidArgumentError
from registry.context import RegistryContext
from registry.store.models import Assessment, Credential, Finding
from registry.workflows.arguments import DEFAULT_PAGE, MAX_PAGE, Page
from registry.workflows.assessments import investigators
from registry.workflows.credentials import CredentialState

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class KeysetPage:
    """At most ``limit`` rows whose id is greater than ``after`` (empty: from the start)."""

    limit: int
    after: str

    @classmethod
    def parse(cls, page_size: int, page_token: str) -> KeysetPage:
        """Raises InvalidArgumentError for a negative size or a token that is no id."""
        if page_size < 0:
            raise InvalidArgumentError("page.page_size", "must not be negative")
        if page_token and not _ID.fullmatch(page_token):
            raise InvalidArgumentError("page.page_token", "is not a token this registry issued")
        return cls(min(page_size or DEFAULT_PAGE, MAX_PAGE), page_token)

    def window(self, query: Select[Credential]) -> Select[Credential]:
        if self.after:
            query = query.where(Credential.id > self.after)
        return query.order_by(Credential.id).limit(self.limit)

    def of(self, items: Sequence[object], last_id: str | None) -> str:
        """The next page's token: the last id read, when the page was full."""
        if len(items) < self.limit or last_id is None:
            return ""
        return last_id


@dataclass(frozen=True)
class DecisionFacts:
    """The decision a credential names, as the registry's tables hold it."""

    state: str
    decision: str | None
    level: str
    consent_at: int | None
    consent_by: str | None
    items: tuple[str, ...]
    investigators: tuple[str, ...]
    decided_by: str | None
    decided_at: int | None
    approved_by: str | None
    approved_at: int | None


@dataclass(frozen=True)
class IssuanceFact:
    credential_id: str
    assessment_id: str | None
    organization_id: str | None
    level: str
    issued_at: int
    decision: DecisionFacts | None
    """None when the credential names no assessment the registry knows."""


@dataclass(frozen=True)
class CredentialStateFact:
    credential_id: str
    kind: str
    state: CredentialState
    cause: str | None
    reason_recorded: bool


def issuance_facts(ctx: RegistryContext, page: KeysetPage) -> Page[IssuanceFact]:
    """One page of personnel credentials with the facts of their decisions."""
    query = page.window(select(Credential).where(Credential.kind == "personnel"))
    with ctx.db.transaction(readonly=True) as session:
        credentials = list(session.execute(query).scalars())
        decisions = _decisions(session, {c.assessment_id for c in credentials if c.assessment_id})
        facts = [
            IssuanceFact(
                c.id,
                c.assessment_id,
                c.organization_id,
                c.level,
                c.issued_at,
                decisions.get(c.assessment_id) if c.assessment_id else None,
            )
            for c in credentials
        ]
    return Page(tuple(facts), page.of(facts, credentials[-1].id if credentials else None))


def credential_states(ctx: RegistryContext, page: KeysetPage) -> Page[CredentialStateFact]:
    """One page of the credentials that are suspended or revoked."""
    query = page.window(
        select(Credential).where(
            Credential.state.in_([CredentialState.SUSPENDED.value, CredentialState.REVOKED.value])
        )
    )
    with ctx.db.transaction(readonly=True) as session:
        credentials = list(session.execute(query).scalars())
    facts = [
        CredentialStateFact(
            c.id,
            c.kind,
            CredentialState(c.state),
            c.suspended_by,
            bool((c.state_reason or "").strip()),
        )
        for c in credentials
    ]
    return Page(tuple(facts), page.of(facts, credentials[-1].id if credentials else None))


def _decisions(session: Session, assessment_ids: set[str]) -> dict[str, DecisionFacts]:
    if not assessment_ids:
        return {}
    rows = session.execute(select(Assessment).where(Assessment.id.in_(assessment_ids))).scalars().all()
    items: dict[str, set[str]] = {a: set() for a in assessment_ids}
    for assessment_id, item in session.execute(
        select(Finding.assessment_id, Finding.item).where(Finding.assessment_id.in_(assessment_ids))
    ):
        items[assessment_id].add(item)
    investigated = investigators(session, assessment_ids)
    return {
        a.id: DecisionFacts(
            state=a.state,
            decision=a.decision,
            level=a.level,
            consent_at=a.consent_at,
            consent_by=a.consent_by,
            items=tuple(sorted(items[a.id])),
            investigators=tuple(sorted(investigated[a.id])),
            decided_by=a.decided_by,
            decided_at=a.decided_at,
            approved_by=a.approved_by,
            approved_at=a.approved_at,
        )
        for a in rows
    }
