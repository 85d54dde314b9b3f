"""What the oversight monitor checks, as pure functions from facts to alerts.

Each check takes what the registry answered (:mod:`clearance.client.audit`)
and what the monitor replayed from the audit chain itself
(:mod:`oversight.monitor_store`), and returns an :class:`Alert` per
mismatch, naming what it concerns (``credential:ID``, ``audit:SEQ``,
``report:YYYY-MM``). Nothing here does I/O.

=============================  ==================================================================
alert                          raised when
=============================  ==================================================================
audit_tail_deleted             the chain no longer reaches the head the monitor verified before
audit_history_rewritten        the event at that head has another hash now
audit_chain_broken             a new event does not chain to the one before (or its hash is wrong)
issuance_not_audited           a credential with no issuance event in the audit chain
issuance_without_decision      a credential naming no assessment the registry knows
issuance_not_favorable         the decision is not favorable, or not in the chain before issuance
issuance_without_consent       no consent recorded
issuance_findings_missing      fewer than the seven findings
decided_by_investigator        the decider recorded the consent or a finding (or nobody decided)
top_secret_not_approved        no second adjudicator, or the approver decided or investigated
level_not_decided              the credential's level is not the level decided
level_above_facility           the organization held no facility clearance at that level then
state_without_reason           a suspension or revocation with no recorded reason
report_invalid                 the monthly report does not verify against the pinned root
report_range_wrong             the report's first or last counted event is not the month's
report_mismatch                a published figure differs from the monitor's recount
=============================  ==================================================================
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from clearance.client.audit import CredentialStateFact, IssuanceFact
from clearance.client.common import AssessmentItem, Decision
from clearance.statistics.report import Table
from oversight.monitor_store import Decision as ChainDecision
from oversight.monitor_store import Issuance


class AlertKind(enum.StrEnum):
    """What went wrong. Stable strings: they are stored and printed."""

    AUDIT_TAIL_DELETED = "audit_tail_deleted"
    AUDIT_HISTORY_REWRITTEN = "audit_history_rewritten"
    AUDIT_CHAIN_BROKEN = "audit_chain_broken"
    ISSUANCE_NOT_AUDITED = "issuance_not_audited"
    ISSUANCE_WITHOUT_DECISION = "issuance_without_decision"
    ISSUANCE_NOT_FAVORABLE = "issuance_not_favorable"
    ISSUANCE_WITHOUT_CONSENT = "issuance_without_consent"
    ISSUANCE_FINDINGS_MISSING = "issuance_findings_missing"
    DECIDED_BY_INVESTIGATOR = "decided_by_investigator"
    TOP_SECRET_NOT_APPROVED = "top_secret_not_approved"  # noqa: S105  (a code, not a secret)
    LEVEL_NOT_DECIDED = "level_not_decided"
    LEVEL_ABOVE_FACILITY = "level_above_facility"
    STATE_WITHOUT_REASON = "state_without_reason"
    REPORT_INVALID = "report_invalid"
    REPORT_RANGE_WRONG = "report_range_wrong"
    REPORT_MISMATCH = "report_mismatch"


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    concerns: str
    """What it is about: ``credential:ID``, ``audit:SEQ``, ``report:YYYY-MM``."""
    detail: str
    log_index: int | None = None
    """The transparency-log entry it concerns, once the monitor follows the log."""

    def row(self) -> tuple[str, str, str, int | None]:
        return self.kind.value, self.concerns, self.detail, self.log_index


SEVEN_ITEMS = frozenset(AssessmentItem.all())


def check_issuance(
    fact: IssuanceFact,
    *,
    levels: Sequence[str],
    issued_by: Issuance | None,
    chain_decision: ChainDecision | None,
    facility_level: str | None,
    log_index: int | None = None,
) -> list[Alert]:
    """Does this credential come from a favorable decision made through the process?

    ``issued_by``, ``chain_decision`` and ``facility_level`` are what the audit
    chain showed: the credential's issuance event, its assessment's decision,
    and the facility level the organization held just before the issuance.
    """
    concerns = f"credential:{fact.credential_id}"
    alerts: list[Alert] = []

    def alert(kind: AlertKind, detail: str) -> None:
        alerts.append(Alert(kind, concerns, detail, log_index))

    if issued_by is None:
        alert(AlertKind.ISSUANCE_NOT_AUDITED, "no credential.issue event in the audit chain names it")
    decision = fact.decision
    if decision is None:
        alert(
            AlertKind.ISSUANCE_WITHOUT_DECISION,
            f"it names no known assessment ({fact.assessment_id or 'none'})",
        )
        return alerts
    if decision.decision is not Decision.FAVORABLE:
        alert(AlertKind.ISSUANCE_NOT_FAVORABLE, f"assessment {fact.assessment_id} is {decision.state.value}")
    elif issued_by is not None and (
        chain_decision is None
        or not chain_decision.in_effect
        or chain_decision.decision != "favorable"
        or chain_decision.seq > issued_by.seq
        or chain_decision.decided_by != decision.decided_by
    ):
        alert(
            AlertKind.ISSUANCE_NOT_FAVORABLE,
            f"the audit chain shows no favorable decision of {fact.assessment_id} by {decision.decided_by or 'anyone'} "
            f"before the issuance (event {issued_by.seq})",
        )
    if decision.consent_at is None:
        alert(AlertKind.ISSUANCE_WITHOUT_CONSENT, f"assessment {fact.assessment_id} has no consent recorded")
    missing = sorted(item.value for item in SEVEN_ITEMS - set(decision.items))
    if missing:
        alert(AlertKind.ISSUANCE_FINDINGS_MISSING, f"no finding for {', '.join(missing)}")
    if not decision.decided_by or decision.decided_by in decision.investigators:
        alert(
            AlertKind.DECIDED_BY_INVESTIGATOR,
            f"decided by {decision.decided_by or 'nobody'}, investigators {', '.join(decision.investigators) or 'none'}",
        )
    if (
        levels
        and decision.level == levels[-1]
        and (
            not decision.approved_by
            or decision.approved_by == decision.decided_by
            or decision.approved_by in decision.investigators
        )
    ):
        alert(
            AlertKind.TOP_SECRET_NOT_APPROVED,
            f"{decision.level} decided by {decision.decided_by or 'nobody'}, "
            f"approved by {decision.approved_by or 'nobody'}",
        )
    if fact.level != decision.level:
        alert(
            AlertKind.LEVEL_NOT_DECIDED,
            f"the credential carries {fact.level}, the decision was for {decision.level}",
        )
    if issued_by is not None and not _within(fact.level, facility_level, levels):
        alert(
            AlertKind.LEVEL_ABOVE_FACILITY,
            f"{fact.level} issued while {fact.organization_id} held {facility_level or 'no facility clearance'}",
        )
    return alerts


def _within(level: str, facility: str | None, levels: Sequence[str]) -> bool:
    if facility is None or level not in levels or facility not in levels:
        return False
    return levels.index(level) <= levels.index(facility)


def check_state(fact: CredentialStateFact) -> list[Alert]:
    """A suspended or revoked credential has a recorded reason (and a suspension, its cause)."""
    concerns = f"credential:{fact.credential_id}"
    if not fact.reason_recorded:
        return [
            Alert(AlertKind.STATE_WITHOUT_REASON, concerns, f"{fact.state.value} with no recorded reason")
        ]
    if fact.state.value == "suspended" and not fact.cause:
        return [Alert(AlertKind.STATE_WITHOUT_REASON, concerns, "suspended with no recorded cause")]
    return []


STATE_CHANGE_ACTIONS = frozenset(
    {
        "credential.suspend",
        "credential.revoke",
        "facility.withdraw",
        "person.affiliation",
        "assessment.withdraw_consent",
    }
)
"""Audit actions that suspend or revoke credentials: each must state its reason."""


def check_state_event(seq: int, action: str, details: dict[str, object]) -> list[Alert]:
    """An audit event that suspends or revokes states why."""
    if action not in STATE_CHANGE_ACTIONS:
        return []
    if action in ("person.affiliation", "assessment.withdraw_consent") and not details.get("suspended"):
        return []
    reason = details.get("reason")
    if isinstance(reason, str) and reason.strip():
        return []
    return [Alert(AlertKind.STATE_WITHOUT_REASON, f"audit:{seq}", f"{action} with no reason")]


def compare_report(month: str, published: dict[str, Table], recounted: dict[str, Table]) -> list[Alert]:
    """One alert listing every cell where the signed report differs from the recount."""
    differences = [
        f"{table}.{row}.{column}: published {published.get(table, {}).get(row, {}).get(column)}, "
        f"recounted {value}"
        for table, rows in recounted.items()
        for row, cells in rows.items()
        for column, value in cells.items()
        if published.get(table, {}).get(row, {}).get(column, "absent") != value
    ]
    if not differences:
        return []
    return [Alert(AlertKind.REPORT_MISMATCH, f"report:{month}", "; ".join(differences))]
