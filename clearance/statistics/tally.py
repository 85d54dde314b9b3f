"""A month's figures, counted from the audit events of that month.

The registry writes into each audit event what the statistics count (see
:mod:`registry.workflows.decisions`), so a month's figures are a function of
the events whose time falls in that month and nothing else: the registry
counts them to sign its report, and the oversight monitor, which reads the
same hash-chained events, counts them again and compares.

What is counted, by audit action:

=============================  =================================================================
action                         counted
=============================  =================================================================
assessment.open                opened, by level
assessment.decide / .approve   a decision when it takes effect (``in_effect``): decided,
                               favorable or unfavorable by level; the items that raised
                               something (a finding other than "no concern"); hours from
                               consent to decision
appeal.file / appeal.resolve   appeals filed; upheld or dismissed
credential.suspend / .revoke   suspensions and revocations decided by staff
assessment.withdraw_consent    suspensions caused by a withdrawn consent
person.affiliation             suspensions caused by an ended affiliation
facility.withdraw              suspensions and revocations caused by a withdrawn facility clearance
=============================  =================================================================
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ITEMS = (
    "family_and_cohabitants",
    "criminal_and_disciplinary_history",
    "information_handling_violations",
    "drug_abuse",
    "mental_illness",
    "alcohol_moderation",
    "financial_situation",
)
"""The seven items of the law, in its order."""
DECISIONS = ("favorable", "unfavorable")
SUSPENSION_CAUSES = ("staff", "consent", "affiliation", "facility")
REVOCATION_CAUSES = ("staff", "facility")
COUNTED_ACTIONS = (
    "assessment.open",
    "assessment.decide",
    "assessment.approve",
    "appeal.file",
    "appeal.resolve",
    "credential.suspend",
    "credential.revoke",
    "assessment.withdraw_consent",
    "person.affiliation",
    "facility.withdraw",
)
"""Every audit action a report counts; no other event changes a figure."""


@dataclass(frozen=True)
class CountedEvent:
    """What the tally reads of one audit event."""

    sequence: int
    at: int
    action: str
    details: Mapping[str, Any]


@dataclass
class MonthlyCounts:
    """The raw figures of one month, before suppression."""

    opened: Counter[str] = field(default_factory=Counter)
    decided: Counter[tuple[str, str]] = field(default_factory=Counter)
    """By (level, decision)."""
    raised: Counter[tuple[str, str]] = field(default_factory=Counter)
    """By (item, decision): decisions in which the item raised something."""
    hours_to_decision: list[int] = field(default_factory=list)
    appeals: Counter[str] = field(default_factory=Counter)
    """filed, upheld, dismissed."""
    suspensions: Counter[str] = field(default_factory=Counter)
    revocations: Counter[str] = field(default_factory=Counter)

    def add(self, event: CountedEvent) -> None:
        """Count one audit event (events of other actions change nothing)."""
        details, action = event.details, event.action
        if action == "assessment.open":
            self.opened[str(details.get("level", ""))] += 1
        elif action in ("assessment.decide", "assessment.approve") and details.get("in_effect") is True:
            self._decision(event)
        elif action == "appeal.file":
            self.appeals["filed"] += 1
        elif action == "appeal.resolve":
            self.appeals["upheld" if details.get("uphold") is True else "dismissed"] += 1
        elif action == "credential.suspend":
            self.suspensions["staff"] += 1
        elif action == "credential.revoke":
            self.revocations["staff"] += 1
        elif action == "assessment.withdraw_consent":
            self.suspensions["consent"] += _count(details.get("suspended"))
        elif action == "person.affiliation":
            self.suspensions["affiliation"] += _count(details.get("suspended"))
        elif action == "facility.withdraw":
            self.suspensions["facility"] += _count(details.get("suspended"))
            self.revocations["facility"] += _count(details.get("revoked_facility_credentials"))

    def _decision(self, event: CountedEvent) -> None:
        details = event.details
        decision, level = details.get("decision"), details.get("level")
        if decision not in DECISIONS or not isinstance(level, str):
            return
        self.decided[(level, str(decision))] += 1
        raised = details.get("raised")
        for item in raised if isinstance(raised, list) else ():
            if item in ITEMS:
                self.raised[(item, str(decision))] += 1
        consent_at = details.get("consent_at")
        if type(consent_at) is int and consent_at <= event.at:
            self.hours_to_decision.append((event.at - consent_at) // 3600)


def _count(value: object) -> int:
    return value if type(value) is int and value > 0 else 0


def tally(events: Iterable[CountedEvent], *, start: int, end: int) -> MonthlyCounts:
    """The figures of the events whose time is in ``[start, end)``."""
    counts = MonthlyCounts()
    for event in events:
        if start <= event.at < end:
            counts.add(event)
    return counts


def median_and_p90(values: Sequence[int]) -> tuple[int, int]:
    """The median (the lower of the two middle values for an even count) and the 90th percentile
    (nearest rank) of ``values``, which must not be empty."""
    ordered = sorted(values)
    return statistics.median_low(ordered), ordered[math.ceil(0.9 * len(ordered)) - 1]
