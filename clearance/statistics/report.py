"""The signed monthly report: what was counted, from which audit events, with small cells hidden.

A compact JWS, header ``typ: clearance-statistics+jwt`` and ``kid`` = the
registry issuing key that signed it (published in the root-signed trust
bundle, so anyone who pins the registry's root can check the report
offline). Payload::

    {"iss": issuer, "iat": when signed, "month": "2026-11",
     "from": start of the month, "to": start of the next (UTC seconds),
     "complete": whether the month was over when signed,
     "audit": {"first": seq, "through": seq, "head": hash of event "through"},
     "threshold": 10, "levels": [the jurisdiction's levels, lowest first],
     "tables": {
       "assessments": {LEVEL | "all": {"opened", "decided", "favorable", "unfavorable"}},
       "findings": {ITEM: {"favorable", "unfavorable"}},
       "hours_to_decision": {"all": {"median", "p90"}},
       "appeals": {"all": {"filed", "upheld", "dismissed"}},
       "suspensions": {CAUSE | "all": {"count"}},
       "revocations": {CAUSE | "all": {"count"}}}}

Each cell is a non-negative integer, or ``null`` when suppressed
(:mod:`.suppression`). The counted events are those with a sequence number
from ``first`` to ``through`` whose time falls in the month (:mod:`.tally`);
``first`` is the first event at or after the month's start, ``through`` the
last before its end (or the head, for a month not over).
"""

from __future__ import annotations

import calendar
import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clearance.bundle import TrustBundle
from clearance.credentials import check_token
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import decode_compact, encode_compact, verify_compact
from clearance.keys import Signer
from clearance.statistics.suppression import THRESHOLD, Relation, suppress
from clearance.statistics.tally import (
    DECISIONS,
    ITEMS,
    REVOCATION_CAUSES,
    SUSPENSION_CAUSES,
    MonthlyCounts,
    median_and_p90,
)

REPORT_TYP = "clearance-statistics+jwt"
MAX_REPORT_BYTES = 64 * 1024
ALL = "all"
ASSESSMENT_COLUMNS = ("opened", "decided", "favorable", "unfavorable")
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_HASH = re.compile(r"[0-9a-f]{64}")

Table = dict[str, dict[str, int | None]]
"""Rows, then columns, then the published cell (None: suppressed)."""


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Raises MalformedError for anything but YYYY-MM."""
        found = _MONTH.fullmatch(text or "")
        if found is None:
            raise MalformedError(f"a month is written YYYY-MM, not {text[:20]!r}")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, seconds: int) -> Month:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        return cls(moment.year, moment.month)

    @property
    def start(self) -> int:
        return calendar.timegm((self.year, self.month, 1, 0, 0, 0))

    @property
    def end(self) -> int:
        """The first second of the next month."""
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class CountedRange:
    """The audit events a report counted: sequence numbers ``first`` to ``through``, the latter's hash."""

    first: int
    through: int
    head: str


@dataclass(frozen=True)
class StatisticsReport:
    issuer: str
    issued_at: int
    month: Month
    complete: bool
    counted: CountedRange
    levels: tuple[str, ...]
    tables: dict[str, Table]
    kid: str | None = None

    @classmethod
    def build(
        cls,
        counts: MonthlyCounts,
        *,
        issuer: str,
        issued_at: int,
        month: Month,
        counted: CountedRange,
        levels: tuple[str, ...],
    ) -> StatisticsReport:
        """The report of ``counts``, suppressed for publication."""
        return cls(issuer, issued_at, month, issued_at >= month.end, counted, levels, figures(counts, levels))

    def to_payload(self) -> dict[str, Any]:
        return {
            "iss": self.issuer,
            "iat": self.issued_at,
            "month": str(self.month),
            "from": self.month.start,
            "to": self.month.end,
            "complete": self.complete,
            "audit": {
                "first": self.counted.first,
                "through": self.counted.through,
                "head": self.counted.head,
            },
            "threshold": THRESHOLD,
            "levels": list(self.levels),
            "tables": self.tables,
        }

    def sign(self, key: Signer) -> str:
        return encode_compact({"typ": REPORT_TYP, "kid": key.kid}, self.to_payload(), key)

    @classmethod
    def parse(cls, token: str) -> StatisticsReport:
        """Decode without checking the signature.

        Raises:
            MalformedError: bad structure, or tables not of the shape the levels call for.
            VerificationError: a forbidden algorithm or the wrong ``typ``.
        """
        jws = decode_compact(token, what="statistics report", max_bytes=MAX_REPORT_BYTES, typ=REPORT_TYP)
        p = jws.payload
        try:
            month = Month.parse(p["month"])
            audit, levels = p["audit"], p["levels"]
            ints = (p["iat"], p["from"], p["to"], audit["first"], audit["through"], p["threshold"])
            if any(type(v) is not int or v < 0 for v in ints) or type(p["complete"]) is not bool:
                raise MalformedError("statistics report has malformed times, counts or flags")
            if (p["from"], p["to"], p["threshold"]) != (month.start, month.end, THRESHOLD):
                raise MalformedError("statistics report's period or threshold does not match its month")
            if not isinstance(p["iss"], str) or not isinstance(audit["head"], str):
                raise MalformedError("statistics report lacks its issuer or audit head")
            if not _HASH.fullmatch(audit["head"]) or not isinstance(levels, list) or not levels:
                raise MalformedError("statistics report has a malformed audit head or levels")
            level_names = tuple(check_token(level, what="level") for level in levels)
            tables = _parse_tables(p["tables"], level_names)
        except (KeyError, TypeError) as exc:
            raise MalformedError(f"statistics report is malformed: {exc}") from exc
        counted = CountedRange(audit["first"], audit["through"], audit["head"])
        return cls(p["iss"], p["iat"], month, p["complete"], counted, level_names, tables, jws.kid)

    @classmethod
    def verify(cls, token: str, bundle: TrustBundle) -> StatisticsReport:
        """The report, if an issuing key of the registry's ``bundle`` signed it while valid.

        Raises:
            MalformedError: the report cannot be parsed.
            VerificationError: another issuer, an unknown key, a bad signature, or a
                key outside its validity when the report was signed.
        """
        report = cls.parse(token)
        if report.issuer != bundle.issuer:
            raise VerificationError(Reason.UNTRUSTED_ISSUER, "the report is from another registry")
        issuing = bundle.issuing_key(report.kid)
        jws = decode_compact(token, what="statistics report", max_bytes=MAX_REPORT_BYTES, typ=REPORT_TYP)
        verify_compact(jws, issuing.key, what="statistics report")
        if not issuing.covers(report.issued_at):
            raise VerificationError(
                Reason.KEY_NOT_VALID_AT_ISSUANCE, "the report's key was not valid when it was signed"
            )
        return report


def figures(counts: MonthlyCounts, levels: tuple[str, ...]) -> dict[str, Table]:
    """Every table of the report, suppressed."""
    return {
        "assessments": _assessments(counts, levels),
        "findings": _grid(
            {f"{item}/{d}": counts.raised[(item, d)] for item in ITEMS for d in DECISIONS}, ITEMS, DECISIONS
        ),
        "hours_to_decision": _hours(counts),
        "appeals": _grid(
            {f"{ALL}/{c}": counts.appeals[c] for c in ("filed", "upheld", "dismissed")},
            (ALL,),
            ("filed", "upheld", "dismissed"),
        ),
        "suspensions": _by_cause(counts.suspensions, SUSPENSION_CAUSES),
        "revocations": _by_cause(counts.revocations, REVOCATION_CAUSES),
    }


def _assessments(counts: MonthlyCounts, levels: tuple[str, ...]) -> Table:
    cells: dict[str, int] = {}
    for level in levels:
        cells[f"{level}/opened"] = counts.opened[level]
        cells[f"{level}/favorable"] = counts.decided[(level, "favorable")]
        cells[f"{level}/unfavorable"] = counts.decided[(level, "unfavorable")]
        cells[f"{level}/decided"] = cells[f"{level}/favorable"] + cells[f"{level}/unfavorable"]
    for column in ASSESSMENT_COLUMNS:
        cells[f"{ALL}/{column}"] = sum(cells[f"{level}/{column}"] for level in levels)
    relations = [
        Relation(f"{row}/decided", (f"{row}/favorable", f"{row}/unfavorable")) for row in (*levels, ALL)
    ] + [
        Relation(f"{ALL}/{column}", tuple(f"{level}/{column}" for level in levels))
        for column in ASSESSMENT_COLUMNS
    ]
    return _rows(suppress(cells, relations), (*levels, ALL), ASSESSMENT_COLUMNS)


def _by_cause(counter: Mapping[str, int], causes: tuple[str, ...]) -> Table:
    cells = {f"{cause}/count": counter.get(cause, 0) for cause in causes}
    cells[f"{ALL}/count"] = sum(cells.values())
    relation = Relation(f"{ALL}/count", tuple(f"{cause}/count" for cause in causes))
    return _rows(suppress(cells, [relation]), (*causes, ALL), ("count",))


def _hours(counts: MonthlyCounts) -> Table:
    """Median and 90th percentile, in whole hours; hidden when fewer than THRESHOLD decisions made them."""
    values = counts.hours_to_decision
    if len(values) < THRESHOLD:
        return {ALL: {"median": None, "p90": None}}
    median, p90 = median_and_p90(values)
    return {ALL: {"median": median, "p90": p90}}


def _grid(cells: dict[str, int], rows: tuple[str, ...], columns: tuple[str, ...]) -> Table:
    return _rows(suppress(cells), rows, columns)


def _rows(cells: Mapping[str, int | None], rows: tuple[str, ...], columns: tuple[str, ...]) -> Table:
    return {row: {column: cells[f"{row}/{column}"] for column in columns} for row in rows}


def _shapes(levels: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    return {
        "assessments": ((*levels, ALL), ASSESSMENT_COLUMNS),
        "findings": (ITEMS, DECISIONS),
        "hours_to_decision": ((ALL,), ("median", "p90")),
        "appeals": ((ALL,), ("filed", "upheld", "dismissed")),
        "suspensions": ((*SUSPENSION_CAUSES, ALL), ("count",)),
        "revocations": ((*REVOCATION_CAUSES, ALL), ("count",)),
    }


def _parse_tables(raw: object, levels: tuple[str, ...]) -> dict[str, Table]:
    """Raises MalformedError unless ``raw`` holds exactly the tables, rows and columns of a report."""
    shapes = _shapes(levels)
    if not isinstance(raw, dict) or set(raw) != set(shapes):
        raise MalformedError("statistics report does not hold exactly the report's tables")
    tables: dict[str, Table] = {}
    for name, (rows, columns) in shapes.items():
        table = raw[name]
        if not isinstance(table, dict) or set(table) != set(rows):
            raise MalformedError(f"statistics table {name} does not have the rows {list(rows)}")
        tables[name] = {}
        for row in rows:
            cells = table[row]
            if not isinstance(cells, dict) or set(cells) != set(columns):
                raise MalformedError(f"statistics table {name}, row {row}, lacks its columns")
            for column in columns:
                value = cells[column]
                if value is not None and (type(value) is not int or value < 0):
                    raise MalformedError(f"statistics table {name}, {row}/{column}, is not a count")
            tables[name][row] = dict(cells)
    return tables
