"""The decision log is append-only and hash-chained: editing, deleting or reordering an entry is detected."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from clearance.errors import StorageError
from node.config import DECISIONS_NAME
from node.decision_log import DecisionLog
from tests.cli.conftest import run_cli


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    log = DecisionLog(tmp_path / DECISIONS_NAME)
    for n in range(1, 6):
        log.append(
            at=1000 + n, allowed=n % 2 == 0, code="allowed" if n % 2 == 0 else "revoked", record={"n": n}
        )
    log.close()
    return tmp_path


def tamper(directory: Path, *statements: str) -> None:
    db = sqlite3.connect(directory / DECISIONS_NAME)
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


def verify(directory: Path) -> tuple[bool, int, str]:
    log = DecisionLog(directory / DECISIONS_NAME)
    try:
        report = log.verify()
    finally:
        log.close()
    return report.intact, report.broken_at, report.problem


def test_an_untouched_log_verifies(log_dir: Path) -> None:
    assert verify(log_dir) == (True, 0, "")
    result = run_cli(["node", "log", "verify", "--dir", str(log_dir), "--json"])
    assert result.exit_code == 0
    assert result.json()["entries_checked"] == 5


def test_appending_continues_the_chain(log_dir: Path) -> None:
    log = DecisionLog(log_dir / DECISIONS_NAME)
    try:
        assert log.append(at=2000, allowed=True, code="allowed", record={"n": 6}) == 6
        assert [e.seq for e in log.entries(after=4)] == [5, 6]
        assert log.entries()[1].prev_hash == log.entries()[0].hash
    finally:
        log.close()
    assert verify(log_dir)[0]


TAMPERING: dict[str, tuple[tuple[str, ...], int, str]] = {
    "edited": (("UPDATE decisions SET allowed = 1, code = 'allowed' WHERE seq = 3",), 3, "edited"),
    "edited record": (("UPDATE decisions SET record = '{\"n\":30}' WHERE seq = 3",), 3, "edited"),
    "deleted": (("DELETE FROM decisions WHERE seq = 2",), 2, "missing"),
    "reordered": (
        (
            "UPDATE decisions SET seq = 100 WHERE seq = 2",
            "UPDATE decisions SET seq = 2 WHERE seq = 3",
            "UPDATE decisions SET seq = 3 WHERE seq = 100",
        ),
        2,
        "does not follow",
    ),
    "cut from the end": (("DELETE FROM decisions WHERE seq = 5",), 5, "head does not match"),
    "renumbered after a deletion": (
        ("DELETE FROM decisions WHERE seq = 2", "UPDATE decisions SET seq = seq - 1 WHERE seq > 2"),
        2,
        "does not follow",
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_tampering_is_detected_where_it_happened(log_dir: Path, how: str) -> None:
    statements, broken_at, problem = TAMPERING[how]
    tamper(log_dir, *statements)

    intact, at, found = verify(log_dir)

    assert not intact
    assert at == broken_at
    assert problem in found


def test_node_log_verify_exits_3_on_a_tampered_log(log_dir: Path) -> None:
    tamper(log_dir, "UPDATE decisions SET code = 'allowed' WHERE seq = 1")

    result = run_cli(["node", "log", "verify", "--dir", str(log_dir)])

    assert result.exit_code == 3
    assert "BROKEN at decision 1" in result.stdout
    assert "decision_log_broken" in result.stderr


def test_node_log_list_shows_decisions(log_dir: Path) -> None:
    listed = run_cli(["node", "log", "list", "--dir", str(log_dir), "--after", "3", "--json"])

    assert listed.exit_code == 0
    assert [(e["seq"], e["code"]) for e in listed.json()] == [(4, "allowed"), (5, "revoked")]


def test_a_decision_that_cannot_be_logged_is_not_given(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / DECISIONS_NAME)
    log.close()  # a closed log stands for a disk that refuses writes
    with pytest.raises(StorageError):
        log.append(at=1, allowed=True, code="allowed", record={})
