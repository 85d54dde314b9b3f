"""``clearance bench pkcs11``: signatures per second through SoftHSM2 against in-process, same run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli import exits
from cli.main import cli


def test_bench_pkcs11_reports_both_rates_and_their_ratio_for_each_algorithm_and_thread_count() -> None:
    result = CliRunner().invoke(cli, ["bench", "pkcs11", "--seconds", "0.05", "--json"])

    assert result.exit_code == exits.OK, result.output
    figures = json.loads(result.stdout)
    assert {(f["alg"], f["threads"]) for f in figures["figures"]} == {
        ("EdDSA", 1),
        ("EdDSA", 2),
        ("ES256", 1),
        ("ES256", 2),
    }
    for figure in figures["figures"]:
        assert figure["token_signatures_per_second"] > 0
        assert figure["in_process_signatures_per_second"] > 0
        assert figure["ratio_token_to_in_process"] > 0
