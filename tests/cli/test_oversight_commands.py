"""``clearance oversight`` and the separation-of-duties commands, run as a user runs them against a registry."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import png
import pytest

from clearance.statistics.report import Month
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from cli import exits
from registry.setup import StaffCredential
from tests.cli.conftest import run_cli
from tests.registry.conftest import Principal, Registry, RegistryFactory, make_registry  # noqa: F401

pytestmark = pytest.mark.database


@pytest.fixture
def live(make_registry: RegistryFactory) -> Registry:  # noqa: F811
    """A registry whose clock starts now, so the command line's tokens (signed with the real clock) pass."""
    return make_registry(start=int(time.time()))


def credential_file(registry: Registry, staff: Principal, path: Path) -> Path:
    StaffCredential(
        endpoint=registry.endpoint,
        audience=registry.audience,
        principal=staff.id,
        role=staff.role,
        key=staff.key,
        ca_pem="",
        tls=False,
    ).save(path)
    return path


def fingerprint(registry: Registry) -> str:
    assert registry.ctx.keys.root is not None
    return registry.ctx.keys.root.kid


def test_oversight_report_prints_the_verified_report_and_draws_its_charts(
    live: Registry, tmp_path: Path
) -> None:
    for _ in range(10):
        live.cleared_person()
    oversight = credential_file(live, live.oversight, tmp_path / "oversight.json")
    month = str(Month.of(live.clock()))

    shown = run_cli(
        ["oversight", "report", "--month", month, "--root-fingerprint", fingerprint(live), "--out", str(tmp_path),
         "--credential", str(oversight)]
    )  # fmt: skip

    assert shown.exit_code == exits.OK, shown.stderr
    assert "signature verified" in shown.stdout
    assert "s: suppressed" in shown.stdout
    width, height, _rows, _info = png.Reader(bytes=(tmp_path / f"report-{month}.png").read_bytes()).read()
    assert (width, height) > (0, 0)
    svg = ET.parse(tmp_path / f"report-{month}.svg").getroot()  # noqa: S314  (written by the command under test)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    as_json = run_cli(
        ["oversight", "report", "--month", month, "--root-fingerprint", fingerprint(live), "--out", str(tmp_path),
         "--credential", str(oversight), "--json"]
    ).json()  # fmt: skip
    assert as_json["tables"]["assessments"]["SECRET"]["favorable"] == 10
    assert (tmp_path / f"report-{month}.jwt").read_text().strip().count(".") == 2


def test_oversight_report_refuses_a_registry_whose_root_is_not_the_pinned_one(
    live: Registry, tmp_path: Path
) -> None:
    oversight = credential_file(live, live.oversight, tmp_path / "oversight.json")

    refused = run_cli(
        ["oversight", "report", "--month", str(Month.of(live.clock())), "--root-fingerprint", "A" * 43,
         "--out", str(tmp_path), "--credential", str(oversight)]
    )  # fmt: skip

    assert refused.exit_code == exits.REFUSED
    assert "root_mismatch" in refused.stderr


def test_oversight_monitor_finds_nothing_then_exits_3_on_a_planted_credential(
    live: Registry, tmp_path: Path
) -> None:
    issued = live.issue(live.cleared_person().assessment.id).id
    oversight = credential_file(live, live.oversight, tmp_path / "oversight.json")
    monitor = ["oversight", "monitor", "--dir", str(tmp_path / "monitor"), "--credential", str(oversight)]
    month = ["--month", str(Month.of(live.clock()))]

    first = run_cli([*monitor, *month, "--root-fingerprint", fingerprint(live)])
    assert first.exit_code == exits.OK, first.stderr
    assert "no alerts" in first.stdout
    live.sql("UPDATE credentials SET state = 'revoked', state_reason = '' WHERE id = :id", id=issued)

    second = run_cli([*monitor, *month])

    assert second.exit_code == exits.REFUSED
    assert "state_without_reason" in second.stdout
    listed = run_cli(["oversight", "alerts", "--dir", str(tmp_path / "monitor"), "--json"]).json()
    assert [(a["kind"], a["concerns"]) for a in listed["alerts"]] == [
        ("state_without_reason", f"credential:{issued}")
    ]


def test_the_first_monitor_run_needs_the_root_fingerprint(live: Registry, tmp_path: Path) -> None:
    oversight = credential_file(live, live.oversight, tmp_path / "oversight.json")

    refused = run_cli(["oversight", "monitor", "--dir", str(tmp_path / "m"), "--credential", str(oversight)])

    assert refused.exit_code == exits.USAGE
    assert "--root-fingerprint" in refused.stderr


def test_staff_create_investigator_and_assessment_approve_from_the_command_line(
    live: Registry, tmp_path: Path
) -> None:
    admin = credential_file(live, live.admin, tmp_path / "admin.json")
    created = run_cli(
        ["staff", "create", "Second adjudicator", "--role", "adjudicator", "--out", str(tmp_path / "second.json"),
         "--credential", str(admin), "--json"]
    )  # fmt: skip
    investigator = run_cli(
        ["staff", "create", "Investigator", "--role", "investigator", "--out", str(tmp_path / "inv.json"),
         "--credential", str(admin), "--json"]
    ).json()  # fmt: skip
    assert investigator["role"] == "ROLE_INVESTIGATOR"
    top = live.new_organization(facility_level="TOP_SECRET")
    assessment = live.consented_assessment(live.enroll_person(top.id).id, level="TOP_SECRET")
    live.record_findings(assessment.id)
    live.adjudicator.assessments.DecideAssessment(
        pb.DecideAssessmentRequest(
            assessment_id=assessment.id, decision=common.DECISION_FAVORABLE, reasons=["ok"]
        )
    )
    approve = ["assessment", "approve", assessment.id, "--approve", "--comment", "concur"]
    second = ["--credential", str(tmp_path / "second.json"), "--json"]
    pending = run_cli(["assessment", "list", "--awaiting-approval", *second]).json()["assessments"]
    assert [a["id"] for a in pending] == [assessment.id]

    own = run_cli(
        [*approve, "--credential", str(credential_file(live, live.adjudicator, tmp_path / "adj.json"))]
    )
    approved = run_cli([*approve, *second])

    assert created.exit_code == exits.OK, created.stderr
    assert own.exit_code == exits.NOT_ALLOWED
    assert "second_adjudicator_required" in own.stderr
    assert approved.exit_code == exits.OK, approved.stderr
    assert approved.json()["assessment"]["state"] == "ASSESSMENT_STATE_FAVORABLE"
    assert approved.json()["notice"]["decision"] == "DECISION_FAVORABLE"


def test_staff_reassign_writes_the_accounts_new_credential(live: Registry, tmp_path: Path) -> None:
    admin = credential_file(live, live.admin, tmp_path / "admin.json")
    moved = run_cli(
        ["staff", "reassign", live.investigator.id, "--role", "oversight", "--out", str(tmp_path / "moved.json"),
         "--credential", str(admin), "--json"]
    )  # fmt: skip

    assert moved.exit_code == exits.OK, moved.stderr
    who = run_cli(["staff", "whoami", "--credential", str(tmp_path / "moved.json"), "--json"]).json()
    assert (who["principal"], who["role"]) == (live.investigator.id, "ROLE_OVERSIGHT")
