"""``clearance bench``: benchmarks that print their figures.

``clearance bench verify`` measures full offline verification of
presentations against the bare signature checks it cannot avoid (see
:mod:`cli.bench_verify`). The benchmark itself is imported only when it runs:
it builds keys and credentials, which needs the whole trust core.
"""

from __future__ import annotations

from typing import Any

import click

from cli import output

TARGET_RATIO = 0.8
"""Full verification should reach this fraction of the raw signature-pair rate."""


@click.group("bench")
def bench() -> None:
    """Benchmarks that print their figures."""


@bench.command("verify")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="How long to measure (at least three rounds are always run).",
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def verify(seconds: float, json_output: bool) -> None:
    """Presentations verified per second, offline, against raw Ed25519 checks.

    The baseline is the two signature verifications every presentation needs
    (issuer and holder), called directly on pyca/cryptography; the full check
    adds parsing, disclosures, key binding, nonce, status and policy.
    """
    from cli.bench_verify import run_verify_benchmark

    with output.progress(f"measuring presentation verification for about {seconds:g}s"):
        result = run_verify_benchmark(seconds)
    figures: dict[str, Any] = {
        **result.to_json(),
        "target_met": result.ratio >= TARGET_RATIO,
        "seconds": seconds,
    }
    output.emit(figures, json_output=json_output, human=_render)


def _render(figures: dict[str, Any]) -> str:
    met = output.status_word("met" if figures["target_met"] else "not met", bool(figures["target_met"]))
    rows = [
        ("presentations per second", f"{figures['presentations_per_second']:,.1f}"),
        ("raw signature pairs per second", f"{figures['raw_signature_pairs_per_second']:,.1f}"),
        ("ratio to raw", f"{figures['ratio_to_raw']:.3f} (target {figures['target_ratio']}: {met})"),
        ("rounds", f"{figures['rounds']} ({figures['presentations_verified']:,} presentations verified)"),
    ]
    return output.table(rows)
