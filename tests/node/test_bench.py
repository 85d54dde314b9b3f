"""``clearance bench propagation`` and ``bench node-verify`` run and print their figures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import exits
from cli.bench_propagation import percentile
from cli.main import cli

pytestmark = pytest.mark.slow


def test_bench_propagation_reports_latency_and_bytes() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "propagation", "--nodes", "3", "--revocations", "4", "--processes", "1", "--json"]
    )

    assert result.exit_code == exits.OK, result.output
    figures = json.loads(result.stdout)
    assert (figures["nodes"], figures["revocations"]) == (3, 4)
    assert 0 < figures["p50_seconds"] <= figures["p99_seconds"] <= figures["max_seconds"] < 30
    assert 0 < figures["bytes_per_node_per_revocation"] < figures["ten_million_list_bytes"]
    assert figures["targets"] == {
        "p99_seconds": 2.0,
        "bytes_per_node_per_revocation": 1_000,
        "registry_peak_rss_bytes": 1 << 30,
        "staff_call_ratio": 2.0,
    }
    assert figures["registry_peak_rss_bytes"] > 0
    assert figures["registry_peak_threads"] > 0
    assert figures["staff_call_idle_p99_seconds"] > 0
    assert figures["staff_call_connected_p99_seconds"] > 0


def test_bench_propagation_keeps_cross_border_for_later() -> None:
    result = CliRunner().invoke(cli, ["bench", "propagation", "--nodes", "3", "--cross-border", "--json"])

    assert result.exit_code != exits.OK
    assert "--cross-border" in result.output


@pytest.mark.parametrize("threads", ["1", "2"])
def test_bench_node_verify_reports_the_api_rate_against_raw(threads: str) -> None:
    result = CliRunner().invoke(
        cli, ["bench", "node-verify", "--seconds", "0.2", "--threads", threads, "--json"]
    )

    assert result.exit_code == exits.OK, result.output
    figures = json.loads(result.stdout)
    assert figures["presentations_per_second"] > 0
    assert figures["threads"] == int(threads)
    assert figures["ratio_to_raw"] > 0
    assert figures["ratio_to_raw_same_threads"] > 0
    assert figures["target_met"] == (figures["ratio_to_raw_same_threads"] >= 0.8)
    assert figures["batch"] == 100
    assert figures["rounds"] >= 3


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([3.0], 0.99) == 3.0
