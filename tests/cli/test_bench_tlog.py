"""``clearance bench tlog``: proof length from tiles and a witness's rate over HTTPS, as figures."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli import exits
from cli.main import cli


def test_bench_tlog_json_reports_both_figures() -> None:
    result = CliRunner().invoke(cli, ["bench", "tlog", "--entries", "70000", "--seconds", "0.5", "--json"])

    assert result.exit_code == exits.OK, result.output
    figures = json.loads(result.stdout)
    assert figures["entries"] == 70_000
    assert 1 <= figures["proof_hashes_max"] <= 17  # ceil(log2(70,000)) hashes at most
    assert figures["proofs_built"] >= 3
    assert figures["witness_logs"] == 10
    assert figures["witness_checkpoints"] >= 10
    assert figures["witness_failures"] == 0
    assert figures["witness_checkpoints_per_second"] > 0
    assert figures["witness_p99_ms"] >= figures["witness_p50_ms"] > 0
    assert figures["targets"] == {"proof_hashes_max": 24, "witness_checkpoints_per_second": 1.0}


def test_bench_tlog_human_output() -> None:
    result = CliRunner().invoke(cli, ["bench", "tlog", "--entries", "1000", "--seconds", "0.2"])

    assert result.exit_code == exits.OK, result.output
    assert "inclusion proof" in result.stdout
    assert "checkpoints/s" in result.stdout
    assert "p99" in result.stdout
