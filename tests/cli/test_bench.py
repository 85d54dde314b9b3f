"""``clearance bench verify``: prints presentations verified per second."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli import exits
from cli.main import cli


def test_bench_verify_json_reports_a_positive_rate() -> None:
    result = CliRunner().invoke(cli, ["bench", "verify", "--seconds", "1", "--json"])

    assert result.exit_code == exits.OK, result.output
    figures = json.loads(result.stdout)
    assert figures["presentations_per_second"] > 0
    assert figures["raw_signature_pairs_per_second"] > 0
    assert figures["ratio_to_raw"] > 0
    assert figures["target_ratio"] == 0.8
    assert isinstance(figures["target_met"], bool)
    assert figures["rounds"] >= 3
    assert result.stderr == ""  # no progress when stderr is not a terminal


def test_bench_verify_human_output() -> None:
    result = CliRunner().invoke(cli, ["bench", "verify", "--seconds", "0.1"])

    assert result.exit_code == exits.OK, result.output
    assert "presentations per second" in result.stdout
    assert "ratio to raw" in result.stdout
    assert "target 0.8" in result.stdout
    assert "\x1b[" not in result.stdout


def test_bench_verify_refuses_a_non_positive_duration() -> None:
    result = CliRunner().invoke(cli, ["bench", "verify", "--seconds", "0"])

    assert result.exit_code == exits.USAGE
