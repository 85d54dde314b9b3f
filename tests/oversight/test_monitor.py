"""The oversight monitor against a real registry: nothing to say about one used through the process,
an alert for each thing done outside it (written straight into the registry's database)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearance.client import RegistryClient
from clearance.encoding import b64url_decode
from clearance.jws import encode_compact
from clearance.keys import SigningKey
from clearance.statistics.report import REPORT_TYP, Month
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from oversight.monitor import Monitor, MonitorRun
from oversight.monitor_checks import AlertKind
from tests.registry.conftest import Registry

pytestmark = pytest.mark.database


def monitor_of(registry: Registry, directory: Path) -> Monitor:
    """The oversight body's monitor, calling as the registry's oversight staff, its root pinned."""
    client = RegistryClient(registry.oversight.channel, endpoint=registry.endpoint)
    monitor = Monitor(directory, client, clock=registry.clock)
    assert registry.ctx.keys.root is not None
    monitor.pin(registry.ctx.keys.root.kid)
    return monitor


def kinds(run: MonitorRun) -> set[tuple[AlertKind, str]]:
    return {(alert.kind, alert.concerns) for alert in run.alerts}


def used_through_the_process(registry: Registry) -> list[str]:
    """Issuances, a Top Secret approval, an appeal upheld and decided again, suspensions, a revocation."""
    issued = [registry.issue(registry.cleared_person().assessment.id).id for _ in range(2)]
    top = registry.new_organization(facility_level="TOP_SECRET")
    issued.append(
        registry.issue(registry.cleared_person(organization=top, level="TOP_SECRET").assessment.id).id
    )
    person = registry.enroll_person(registry.new_organization().id)
    refused = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE).assessment
    appeal = registry.adjudicator.assessments.FileAppeal(
        pb.FileAppealRequest(assessment_id=refused.id, grounds="the debt was repaid")
    ).appeal
    registry.oversight.assessments.ResolveAppeal(
        pb.ResolveAppealRequest(appeal_id=appeal.id, uphold=True, resolution="reassess the finances")
    )
    registry.record_findings(refused.id, items=(common.ASSESSMENT_ITEM_FINANCIAL_SITUATION,))
    registry.adjudicator.assessments.DecideAssessment(
        pb.DecideAssessmentRequest(
            assessment_id=refused.id, decision=common.DECISION_FAVORABLE, reasons=["repaid"]
        )
    )
    issued.append(registry.issue(refused.id).id)
    registry.adjudicator.credentials.SuspendCredential(
        pb.SuspendCredentialRequest(id=issued[0], reason="inquiry")
    )
    registry.adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued[1], reason="left"))
    return issued


def test_a_registry_used_through_the_process_raises_no_alert(registry: Registry, tmp_path: Path) -> None:
    issued = used_through_the_process(registry)
    monitor = monitor_of(registry, tmp_path / "monitor")

    first = monitor.run([Month.of(registry.clock())])

    assert first.alerts == []
    assert first.issuances_checked == len(issued)
    assert first.states_checked == 2
    assert first.reports_checked == [str(Month.of(registry.clock()))]
    assert first.head.seq == registry.chain().events_checked == first.events_verified
    registry.cleared_person()
    second = monitor.run()
    assert second.alerts == []
    assert second.events_verified == registry.chain().events_checked - first.head.seq > 0
    assert monitor.store.alerts() == []


def copy_credential(registry: Registry, credential_id: str, new_id: str, **changes: str) -> None:
    """A credential row written straight into the database, as a registry issuing outside the process would."""
    columns = "kind, person_id, organization_id, assessment_id, node_id, jurisdiction, level, categories, state, " \
        "state_reason, status_list_id, status_index, issued_at, expires_at, holder_thumbprint, issuing_kid, suspended_by"  # fmt: skip
    chosen = ", ".join(f":{c}" if c in changes else c for c in columns.split(", "))
    registry.sql(
        f"INSERT INTO credentials (id, {columns}) "  # noqa: S608  (column names are ours)
        f"SELECT :new_id, {chosen.replace('status_index', '(SELECT max(status_index) + 1 FROM credentials)')} "
        "FROM credentials WHERE id = :id",
        new_id=new_id,
        id=credential_id,
        **changes,
    )


def test_a_credential_written_into_the_database_is_caught(registry: Registry, tmp_path: Path) -> None:
    genuine = registry.issue(registry.cleared_person().assessment.id).id
    refused = registry.decided_assessment(
        registry.enroll_person(registry.new_organization().id).id, decision=common.DECISION_UNFAVORABLE
    ).assessment
    monitor = monitor_of(registry, tmp_path / "monitor")
    assert monitor.run().alerts == []

    copy_credential(registry, genuine, "cred_planted_copy")
    copy_credential(registry, genuine, "cred_planted_refused", assessment_id=refused.id)
    copy_credential(registry, genuine, "cred_planted_higher", level="TOP_SECRET")
    run = monitor.run()

    assert kinds(run) == {
        (AlertKind.ISSUANCE_NOT_AUDITED, "credential:cred_planted_copy"),
        (AlertKind.ISSUANCE_NOT_AUDITED, "credential:cred_planted_refused"),
        (AlertKind.ISSUANCE_NOT_FAVORABLE, "credential:cred_planted_refused"),
        (AlertKind.ISSUANCE_NOT_AUDITED, "credential:cred_planted_higher"),
        (AlertKind.LEVEL_NOT_DECIDED, "credential:cred_planted_higher"),
    }
    assert run.new_alerts == 5
    assert len(monitor.store.alerts()) == 5
    assert monitor.run().new_alerts == 0  # the same alerts are stored once


def test_a_decision_forged_in_the_database_is_caught_at_the_issuance_it_allowed(
    registry: Registry, tmp_path: Path
) -> None:
    """The registry issues (its checks read the forged row); the chain shows no favorable decision."""
    refused = registry.decided_assessment(
        registry.enroll_person(registry.new_organization().id).id, decision=common.DECISION_UNFAVORABLE
    ).assessment
    registry.sql(
        "UPDATE assessments SET state = 'favorable', decision = 'favorable', valid_until = :until WHERE id = :id",
        until=registry.clock() + 365 * 86_400,
        id=refused.id,
    )
    issued = registry.issue(refused.id).id

    run = monitor_of(registry, tmp_path / "monitor").run()

    assert kinds(run) == {(AlertKind.ISSUANCE_NOT_FAVORABLE, f"credential:{issued}")}


def test_a_suspension_without_a_reason_is_caught(registry: Registry, tmp_path: Path) -> None:
    issued = registry.issue(registry.cleared_person().assessment.id).id
    registry.sql(
        "UPDATE credentials SET state = 'suspended', state_reason = NULL, suspended_by = 'staff' WHERE id = :id",
        id=issued,
    )

    run = monitor_of(registry, tmp_path / "monitor").run()

    assert kinds(run) == {(AlertKind.STATE_WITHOUT_REASON, f"credential:{issued}")}


def test_a_deleted_audit_tail_is_caught_at_the_next_run(registry: Registry, tmp_path: Path) -> None:
    registry.issue(registry.cleared_person().assessment.id)
    monitor = monitor_of(registry, tmp_path / "monitor")
    seen = monitor.run().head
    keep = seen.seq - 3
    [(kept_hash,)] = registry.sql("SELECT hash FROM audit_events WHERE seq = :seq", seq=keep)
    registry.sql("DELETE FROM audit_events WHERE seq > :seq", seq=keep)
    registry.sql("UPDATE audit_head SET seq = :seq, hash = :hash", seq=keep, hash=kept_hash)
    assert registry.chain().intact  # the registry cannot tell: its chain is a shorter, intact one

    run = monitor.run()

    assert (AlertKind.AUDIT_TAIL_DELETED, f"audit:{seen.seq}") in kinds(run)
    assert monitor.store.head() == seen  # the monitor keeps the head it verified


def test_an_edited_event_behind_the_head_is_caught(registry: Registry, tmp_path: Path) -> None:
    registry.issue(registry.cleared_person().assessment.id)
    monitor = monitor_of(registry, tmp_path / "monitor")
    monitor.run()
    registry.sql("UPDATE audit_events SET details = '{}' WHERE seq = 3")

    run = monitor.run()

    assert (AlertKind.AUDIT_CHAIN_BROKEN, "audit:3") in kinds(run)


def test_a_report_whose_figures_are_not_the_chains_is_caught(registry: Registry, tmp_path: Path) -> None:
    for _ in range(10):
        registry.cleared_person()
    monitor = monitor_of(registry, tmp_path / "monitor")
    month = Month.of(registry.clock())
    token = RegistryClient(registry.oversight.channel, endpoint=registry.endpoint).audit.monthly_report(
        str(month)
    )
    payload = json.loads(b64url_decode(token.split(".")[1]))
    assert payload["tables"]["assessments"]["SECRET"]["favorable"] == 10
    payload["tables"]["assessments"]["SECRET"]["favorable"] = 0
    payload["tables"]["assessments"]["SECRET"]["decided"] = 0
    key = registry.ctx.keys.issuing_key  # the registry itself signs what it did not count
    lying = encode_compact({"typ": REPORT_TYP, "kid": key.kid}, payload, key)

    alerts = monitor.check_report_token(lying, monitor.bundle())

    assert [(a.kind, a.concerns) for a in alerts] == [(AlertKind.REPORT_MISMATCH, f"report:{month}")]
    assert "assessments.SECRET.favorable: published 0, recounted 10" in alerts[0].detail
    assert monitor.check_report_token(token, monitor.bundle()) == []
    forged = encode_compact({"typ": REPORT_TYP, "kid": key.kid}, payload, SigningKey.generate())
    assert [a.kind for a in monitor.check_report_token(forged, monitor.bundle())] == [
        AlertKind.REPORT_INVALID
    ]
