"""``clearance credential bulk-issue``: loading a cleared population from a file, batch by batch."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from clearance.v1 import common_pb2 as common
from cli import exits
from tests.cli.conftest import run_cli
from tests.factories import Holder
from tests.registry.conftest import Registry, RegistryFactory

pytestmark = pytest.mark.database


@pytest.fixture
def registry(make_registry: RegistryFactory) -> Registry:
    """A registry whose clock is now: the CLI signs its access tokens with the real time."""
    return make_registry(start=int(time.time()))


def requests_file(path: Path, assessment_ids: list[str]) -> Path:
    lines = [json.dumps({"assessment_id": a, "holder_jwk": Holder().key.public.jwk}) for a in assessment_ids]
    path.write_text("\n".join(lines) + "\n")
    return path


def bulk_issue(registry: Registry, requests: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    run = run_cli(
        [
            "credential",
            "bulk-issue",
            str(requests),
            "--out",
            str(out),
            "--credential",
            str(registry.directory / "admin.json"),
            "--registry",
            registry.endpoint,
            "--insecure",
            *extra,
        ]
    )
    return run.exit_code, run.stdout, run.stderr


def test_a_file_of_requests_is_issued_in_batches_and_written_out(registry: Registry, tmp_path: Path) -> None:
    org = registry.new_organization()
    assessments = [registry.cleared_person(organization=org).assessment.id for _ in range(5)]
    out = tmp_path / "issued.jsonl"

    code, stdout, stderr = bulk_issue(
        registry, requests_file(tmp_path / "requests.jsonl", assessments), out, "--batch", "2", "--json"
    )

    assert code == exits.OK, stderr
    assert json.loads(stdout)["issued"] == 5
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["assessment_id"] for w in written] == assessments
    assert all(w["sd_jwt"].count("~") >= 2 for w in written)
    assert out.stat().st_mode & 0o077 == 0
    assert registry.count("credentials") == 5


def test_what_was_issued_before_a_failing_batch_is_written_not_lost(
    registry: Registry, tmp_path: Path
) -> None:
    org = registry.new_organization()
    good = [registry.cleared_person(organization=org).assessment.id for _ in range(2)]
    person = registry.enroll_person(org.id)
    refused = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE).assessment.id
    out = tmp_path / "issued.jsonl"

    code, _stdout, stderr = bulk_issue(
        registry, requests_file(tmp_path / "requests.jsonl", [*good, refused]), out, "--batch", "2"
    )

    assert code == exits.PRECONDITION
    assert "2 of 3 issued before the failure" in stderr
    assert [json.loads(line)["assessment_id"] for line in out.read_text().splitlines()] == good
    assert registry.count("credentials") == 2


def test_a_line_that_is_not_a_request_is_named_and_nothing_is_issued(
    registry: Registry, tmp_path: Path
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"assessment_id": "asm_x", "holder_jwk": {}}\nnot json\n')

    code, _stdout, stderr = bulk_issue(registry, requests, tmp_path / "issued.jsonl")

    assert code == exits.USAGE
    assert "REQUESTS_FILE line 2" in stderr
    assert not (tmp_path / "issued.jsonl").exists()
    assert registry.count("credentials") == 0
