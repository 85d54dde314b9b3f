"""The signed monthly report: the month's audit events counted, small cells hidden, signed.

The report counts audit events only (:mod:`clearance.statistics.tally`), so
it never changes once its month is over, and the oversight monitor, which
reads the same hash-chained events, recounts it. It is signed with the
registry's current issuing key: that key is already published, with its
validity window, in the root-signed trust bundle, so whoever pins the
registry's root checks the report offline, and a dedicated key would need a
publication and rotation path of its own for nothing more.
"""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clearance.errors import InvalidArgumentError, MalformedError
from clearance.statistics.report import CountedRange, Month, StatisticsReport
from clearance.statistics.tally import COUNTED_ACTIONS, CountedEvent, MonthlyCounts
from registry.context import RegistryContext
from registry.store.audit import GENESIS
from registry.store.models import AuditEvent


def monthly_report(ctx: RegistryContext, month_text: str) -> str:
    """The signed report of ``month_text`` (YYYY-MM, UTC), counted now.

    Raises:
        InvalidArgumentError: not YYYY-MM, or a month that has not begun.
    """
    try:
        month = Month.parse(month_text)
    except MalformedError as exc:
        raise InvalidArgumentError("month", exc.detail) from exc
    now = ctx.now()
    if month.start > now:
        raise InvalidArgumentError("month", f"{month} has not begun")
    with ctx.db.transaction(readonly=True) as session:
        counted = counted_range(session, month)
        counts = MonthlyCounts()
        query = (
            select(AuditEvent.seq, AuditEvent.at, AuditEvent.action, AuditEvent.details)
            .where(
                AuditEvent.seq.between(counted.first, counted.through),
                AuditEvent.at >= month.start,
                AuditEvent.at < month.end,
                AuditEvent.action.in_(COUNTED_ACTIONS),
            )
            .order_by(AuditEvent.seq)
            .execution_options(yield_per=1000)
        )
        for seq, at, action, details in session.execute(query):
            counts.add(CountedEvent(seq, at, action, json.loads(details)))
    report = StatisticsReport.build(
        counts,
        issuer=ctx.config.issuer,
        issued_at=now,
        month=month,
        counted=counted,
        levels=tuple(ctx.config.levels),
    )
    return report.sign(ctx.keys.issuing_key)


def counted_range(session: Session, month: Month) -> CountedRange:
    """The events a report of ``month`` counts: from the first at or after its start to the last before its end."""
    through = session.execute(select(func.max(AuditEvent.seq)).where(AuditEvent.at < month.end)).scalar()
    through = int(through or 0)
    first = session.execute(select(func.min(AuditEvent.seq)).where(AuditEvent.at >= month.start)).scalar()
    first = int(first) if first is not None and first <= through else through + 1
    head = GENESIS
    if through:
        head = session.execute(select(AuditEvent.hash).where(AuditEvent.seq == through)).scalar_one()
    return CountedRange(first, through, head)
