"""The monthly statistics: counted from audit events, small cells hidden, signed, checked by others."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from clearance.bundle import TrustBundle
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import encode_compact
from clearance.keys import SigningKey
from clearance.statistics.report import REPORT_TYP, CountedRange, Month, StatisticsReport
from clearance.statistics.suppression import THRESHOLD, Relation, suppress
from clearance.statistics.tally import CountedEvent, MonthlyCounts, median_and_p90, tally
from tests.factories import LEVELS, NOW, RegistryWorld

NOVEMBER = Month(2026, 11)
HOUR = 3600


# -- suppression ---------------------------------------------------------------------------


def test_a_cell_of_nine_is_suppressed_and_so_is_the_cell_that_would_give_it_away() -> None:
    cells = {"decided": 20, "favorable": 11, "unfavorable": 9}

    published = suppress(cells, [Relation("decided", ("favorable", "unfavorable"))])

    assert published == {"decided": 20, "favorable": None, "unfavorable": None}


def test_ten_is_published_and_zero_is_published() -> None:
    cells = {"decided": 10, "favorable": 10, "unfavorable": 0}

    assert suppress(cells, [Relation("decided", ("favorable", "unfavorable"))]) == cells


def test_the_complement_is_the_smallest_part_that_hides_anything() -> None:
    cells = {"all": 45, "a": 3, "b": 0, "c": 12, "d": 30}

    published = suppress(cells, [Relation("all", ("a", "b", "c", "d"))])

    # b is zero (hiding it would reveal nothing: counts are never negative), so c goes with a.
    assert published == {"all": 45, "a": None, "b": 0, "c": None, "d": 30}


def test_a_lone_small_part_with_only_zeros_beside_it_hides_the_total() -> None:
    cells = {"all": 4, "a": 4, "b": 0}

    assert suppress(cells, [Relation("all", ("a", "b"))]) == {"all": None, "a": None, "b": 0}


def test_suppression_runs_until_no_relation_has_a_single_hidden_cell() -> None:
    # Rows: level decided = favorable + unfavorable; columns: "all" = sum of the levels.
    cells = {
        "S/decided": 20, "S/favorable": 11, "S/unfavorable": 9,
        "T/decided": 30, "T/favorable": 15, "T/unfavorable": 15,
        "all/decided": 50, "all/favorable": 26, "all/unfavorable": 24,
    }  # fmt: skip
    relations = [
        Relation(f"{row}/decided", (f"{row}/favorable", f"{row}/unfavorable")) for row in ("S", "T", "all")
    ] + [Relation(f"all/{c}", (f"S/{c}", f"T/{c}")) for c in ("decided", "favorable", "unfavorable")]

    published = suppress(cells, relations)

    hidden = {key for key, value in published.items() if value is None}
    assert hidden == {"S/favorable", "S/unfavorable", "T/favorable", "T/unfavorable"}
    for relation in relations:
        assert sum(k in hidden for k in (relation.total, *relation.parts)) != 1


def test_suppression_refuses_figures_that_do_not_add_up() -> None:
    with pytest.raises(ValueError, match="not the sum"):
        suppress({"all": 5, "a": 3, "b": 3}, [Relation("all", ("a", "b"))])
    with pytest.raises(ValueError, match="negative"):
        suppress({"a": -1})


# -- counting ------------------------------------------------------------------------------


def event(seq: int, action: str, at: int = NOVEMBER.start + HOUR, **details: Any) -> CountedEvent:
    return CountedEvent(seq, at, action, details)


def decision(seq: int, verdict: str, level: str = "SECRET", **details: Any) -> CountedEvent:
    at = NOVEMBER.start + 50 * HOUR
    fields: dict[str, Any] = {
        "level": level,
        "decision": verdict,
        "in_effect": True,
        "consent_at": NOVEMBER.start,
    }
    return event(seq, "assessment.decide", at, **{**fields, **details})


def test_the_tally_counts_what_each_audit_action_means() -> None:
    events = [
        event(1, "assessment.open", level="SECRET"),
        decision(2, "favorable", raised=["drug_abuse"]),
        decision(3, "unfavorable", awaiting_approval=True, in_effect=False, level="TOP_SECRET"),
        event(4, "assessment.approve", NOVEMBER.start + 10 * HOUR, level="TOP_SECRET", decision="unfavorable",
              approved=True, in_effect=True, consent_at=NOVEMBER.start, raised=["financial_situation"]),
        event(5, "appeal.file"),
        event(6, "appeal.resolve", uphold=True),
        event(7, "appeal.resolve", uphold=False),
        event(8, "credential.suspend", reason="inquiry"),
        event(9, "credential.revoke", reason="left"),
        event(10, "assessment.withdraw_consent", suspended=2),
        event(11, "person.affiliation", suspended=1),
        event(12, "facility.withdraw", suspended=3, revoked_facility_credentials=1),
        event(13, "credential.issue"),  # not a figure of the report
        event(14, "assessment.open", NOVEMBER.end, level="SECRET"),  # next month
    ]  # fmt: skip

    counts = tally(events, start=NOVEMBER.start, end=NOVEMBER.end)

    assert counts.opened == {"SECRET": 1}
    assert counts.decided == {("SECRET", "favorable"): 1, ("TOP_SECRET", "unfavorable"): 1}
    assert counts.raised == {("drug_abuse", "favorable"): 1, ("financial_situation", "unfavorable"): 1}
    assert sorted(counts.hours_to_decision) == [10, 50]
    assert counts.appeals == {"filed": 1, "upheld": 1, "dismissed": 1}
    assert counts.suspensions == {"staff": 1, "consent": 2, "affiliation": 1, "facility": 3}
    assert counts.revocations == {"staff": 1, "facility": 1}


def test_the_median_is_the_lower_middle_and_the_90th_percentile_the_nearest_rank() -> None:
    assert median_and_p90(list(range(1, 11))) == (5, 9)
    assert median_and_p90([100, *range(1, 20)]) == (10, 18)


# -- the signed report ---------------------------------------------------------------------


def counts_of(*, hours_to_decision: tuple[int, ...] | list[int] = (), **counters: Any) -> MonthlyCounts:
    """Raw figures: each keyword names a counter of :class:`MonthlyCounts` and what to add to it."""
    counts = MonthlyCounts(hours_to_decision=list(hours_to_decision))
    for name, value in counters.items():
        getattr(counts, name).update(value)
    return counts


def sample(issued_at: int = NOVEMBER.end + HOUR) -> StatisticsReport:
    counts = counts_of(
        opened={"SECRET": 25, "CONFIDENTIAL": 14},
        decided={
            ("SECRET", "favorable"): 11,
            ("SECRET", "unfavorable"): 9,
            ("CONFIDENTIAL", "favorable"): 12,
        },
        raised={("financial_situation", "unfavorable"): 9, ("alcohol_moderation", "favorable"): 15},
        hours_to_decision=list(range(0, 320, 10)),
        appeals={"filed": 12, "upheld": 4, "dismissed": 10},
        suspensions={"staff": 14, "affiliation": 22},
        revocations={"staff": 11},
    )
    return StatisticsReport.build(
        counts,
        issuer="https://registry.jp.example",
        issued_at=issued_at,
        month=NOVEMBER,
        counted=CountedRange(10, 99, "ab" * 32),
        levels=LEVELS,
    )


def test_the_report_publishes_each_table_suppressed() -> None:
    tables = sample().tables

    assert tables["assessments"]["SECRET"] == {
        "opened": 25,
        "decided": 20,
        "favorable": None,
        "unfavorable": None,
    }
    assert tables["assessments"]["CONFIDENTIAL"]["opened"] == 14
    assert tables["findings"]["financial_situation"] == {"favorable": 0, "unfavorable": None}
    assert tables["findings"]["alcohol_moderation"] == {"favorable": 15, "unfavorable": 0}
    assert tables["hours_to_decision"]["all"] == {"median": 150, "p90": 280}
    assert tables["appeals"]["all"] == {"filed": 12, "upheld": None, "dismissed": 10}
    assert tables["suspensions"]["all"] == {"count": 36}
    assert tables["revocations"] == {"staff": {"count": 11}, "facility": {"count": 0}, "all": {"count": 11}}
    counts = [
        cell
        for name, table in tables.items()
        if name != "hours_to_decision"  # hours, not people
        for row in table.values()
        for cell in row.values()
    ]
    assert all(cell is None or cell == 0 or cell >= THRESHOLD for cell in counts)


def test_times_from_fewer_than_ten_decisions_are_not_published() -> None:
    counts = counts_of(decided={("SECRET", "favorable"): 9}, hours_to_decision=[5] * 9)

    report = StatisticsReport.build(
        counts,
        issuer="x",
        issued_at=NOVEMBER.end,
        month=NOVEMBER,
        counted=CountedRange(1, 1, "0" * 64),
        levels=LEVELS,
    )

    assert report.tables["hours_to_decision"]["all"] == {"median": None, "p90": None}


def signed_world() -> tuple[RegistryWorld, TrustBundle, str]:
    world = RegistryWorld.create("JP", now=NOVEMBER.end + HOUR)
    bundle = TrustBundle.verify(world.bundle(), world.root.public)
    report = StatisticsReport.build(
        counts_of(opened={"SECRET": 12}),
        issuer=world.issuer,
        issued_at=world.now,
        month=NOVEMBER,
        counted=CountedRange(1, 40, "cd" * 32),
        levels=LEVELS,
    )
    return world, bundle, report.sign(world.issuing)


def test_a_signed_report_verifies_against_the_registrys_bundle_and_reads_back_the_same() -> None:
    _world, bundle, token = signed_world()

    report = StatisticsReport.verify(token, bundle)

    assert (str(report.month), report.complete, report.counted) == (
        "2026-11",
        True,
        CountedRange(1, 40, "cd" * 32),
    )
    assert report.tables["assessments"]["SECRET"]["opened"] == 12


def test_a_report_is_a_jws_another_library_verifies_with_the_published_key() -> None:
    world, _bundle, token = signed_world()

    jws = JWS()
    jws.deserialize(token)
    jws.verify(JWK(**world.issuing.public.jwk))

    assert jws.jose_header["typ"] == REPORT_TYP
    payload = json.loads(jws.payload)
    assert payload["month"] == "2026-11"
    assert payload["tables"]["assessments"]["SECRET"]["opened"] == 12


def test_a_report_signed_by_a_key_the_bundle_does_not_list_is_refused() -> None:
    world, bundle, token = signed_world()
    forged = encode_compact(
        {"typ": REPORT_TYP, "kid": world.issuing.kid}, json.loads(payload_of(token)), SigningKey.generate()
    )

    with pytest.raises(VerificationError) as refused:
        StatisticsReport.verify(forged, bundle)
    assert refused.value.reason is Reason.BAD_SIGNATURE


def payload_of(token: str) -> str:
    from clearance.encoding import b64url_decode

    return b64url_decode(token.split(".")[1]).decode()


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["tables"]["assessments"].pop("all"),
        lambda p: p["tables"]["appeals"]["all"].update(filed=-1),
        lambda p: p["tables"]["appeals"]["all"].update(filed="12"),
        lambda p: p.update(threshold=5),
        lambda p: p.update(month="2026-13"),
        lambda p: p.update(to=p["to"] + 1),
        lambda p: p["audit"].update(head="not a hash"),
        lambda p: p["tables"].update(extra={}),
    ],
)
def test_a_malformed_report_is_refused(change: Any) -> None:
    world, _bundle, token = signed_world()
    payload = json.loads(payload_of(token))
    change(payload)

    with pytest.raises(MalformedError):
        StatisticsReport.parse(
            encode_compact({"typ": REPORT_TYP, "kid": world.issuing.kid}, payload, world.issuing)
        )


def test_months_are_utc_calendar_months() -> None:
    december = Month.parse("2026-12")
    assert (december.start, december.end) == (
        int(datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC).timestamp()),
        int(datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC).timestamp()),
    )
    assert Month.of(NOW) == Month.of(Month.of(NOW).start)
    with pytest.raises(MalformedError):
        Month.parse("2026-1")
