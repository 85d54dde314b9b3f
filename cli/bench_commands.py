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


@bench.command("registry")
@click.option(
    "--database-url",
    metavar="URL",
    help="PostgreSQL URL (a scratch schema is used); default: embedded SQLite.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    help="Single-issuance run length.",
)
@click.option(
    "--bulk",
    "bulk_total",
    type=click.IntRange(min=1000),
    default=20_000,
    show_default=True,
    help="Credentials to bulk-issue.",
)
@click.option(
    "--list-entries",
    type=click.IntRange(min=131_072),
    default=10_000_000,
    show_default=True,
    help="Status list size to republish.",
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def registry_bench(
    database_url: str | None, seconds: float, bulk_total: int, list_entries: int, json_output: bool
) -> None:
    """Issuance through the gRPC API (single and bulk) and republishing a 10M-entry status list.

    The registry runs as its own process on loopback; setup is not timed.
    """
    from cli.bench_registry import run_registry_benchmark

    with output.progress("benchmarking the registry"):
        result = run_registry_benchmark(
            database_url=database_url, seconds=seconds, bulk_total=bulk_total, list_entries=list_entries
        )
    output.emit(result.to_json(), json_output=json_output, human=_render_registry)


def _render_registry(figures: dict[str, Any]) -> str:
    targets = figures["targets"]

    def verdict(name: str, higher_is_better: bool) -> str:
        ok = figures[name] >= targets[name] if higher_is_better else figures[name] <= targets[name]
        return output.status_word("met" if ok else "not met", ok)

    rows = [
        ("database", figures["database"]),
        (
            "single issuance",
            f"{figures['single_issuance_per_second']:,.0f}/s (target 1,000: {verdict('single_issuance_per_second', True)})",
        ),
        (
            "single issuance latency",
            f"p50 {figures['single_issuance_p50_ms']} ms, p99 {figures['single_issuance_p99_ms']} ms "
            f"(target p99 50 ms: {verdict('single_issuance_p99_ms', False)})",
        ),
        (
            "bulk issuance",
            f"{figures['bulk_issuance_per_second']:,.0f}/s (target 10,000: {verdict('bulk_issuance_per_second', True)})",
        ),
        (
            "status list republish",
            f"{figures['status_list_entries']:,} entries, {figures['status_list_revoked']:,} revoked: "
            f"{figures['status_list_republish_ms']} ms (target 200: {verdict('status_list_republish_ms', False)})",
        ),
        (
            "status list size",
            f"{figures['status_list_bytes']:,} bytes compressed (target 250,000: {verdict('status_list_bytes', False)}); "
            f"{figures['status_list_token_bytes']:,} bytes as a signed token",
        ),
    ]
    return output.table(rows)


@bench.command("propagation")
@click.option(
    "--nodes", type=click.IntRange(min=1, max=10_000), default=100, show_default=True, help="Simulated nodes."
)
@click.option(
    "--revocations",
    type=click.IntRange(min=1),
    help="Credentials revoked one at a time (default: as many as nodes, at most 20).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1, max=64),
    default=4,
    show_default=True,
    help="Worker processes the nodes share (each node keeps its own connection, stream and trust store).",
)
@click.option(
    "--cross-border", is_flag=True, help="A partner registry revokes; our nodes deny (not measured yet)."
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def propagation(
    nodes: int, revocations: int | None, processes: int, cross_border: bool, json_output: bool
) -> None:
    """Time from a revocation at the registry until every connected node holds it; bytes, memory, staff calls.

    The registry runs in its own process (as ``registry serve``); the nodes are
    light (asyncio tasks in a few worker processes) but each has its own
    connection, credential and trust store and verifies every update. Setup
    is not timed.
    """
    from cli.bench_propagation import render, run_propagation_benchmark

    if cross_border:
        raise click.UsageError("--cross-border is not measured yet (federation by deltas comes first)")
    with output.progress(f"revoking with {nodes} nodes connected"):
        result = run_propagation_benchmark(
            nodes=nodes, revocations=revocations, processes=processes, cross_border=cross_border
        )
    output.emit(
        result.to_json(),
        json_output=json_output,
        human=lambda figures: render(figures, output.table, output.status_word),
    )


@bench.command("node-verify")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="How long to measure (at least three rounds are always run).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=0, max=64),
    default=0,
    help="The node's verify_threads; 0 (the default): one per core, as a node does.",
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def node_verify(seconds: float, threads: int, json_output: bool) -> None:
    """Presentations verified per second through a node's local API, in batches of 100, against raw checks.

    The raw signature checks are measured on one thread and on as many threads as the node uses.
    """
    from cli.bench_node_verify import run_node_verify_benchmark
    from node.config import default_verify_threads

    threads = threads or default_verify_threads()
    with output.progress(f"measuring the node's Verify on {threads} thread(s) for about {seconds:g}s"):
        result = run_node_verify_benchmark(seconds, threads)
    output.emit(result.to_json(), json_output=json_output, human=_render_node_verify)


def _render_node_verify(figures: dict[str, Any]) -> str:
    met = output.status_word("met" if figures["target_met"] else "not met", bool(figures["target_met"]))
    threads = figures["threads"]
    rows = [
        ("node threads", str(threads)),
        ("presentations per second (API)", f"{figures['presentations_per_second']:,.1f}"),
        ("raw signature pairs per second, 1 thread", f"{figures['raw_signature_pairs_per_second']:,.1f}"),
        ("ratio to raw, 1 thread", f"{figures['ratio_to_raw']:.3f}"),
        (
            f"raw signature pairs per second, {threads} thread(s)",
            f"{figures['raw_signature_pairs_per_second_same_threads']:,.1f}",
        ),
        (
            f"ratio to raw, {threads} thread(s)",
            f"{figures['ratio_to_raw_same_threads']:.3f} (target {figures['target_ratio']}: {met})",
        ),
        ("rounds", f"{figures['rounds']} (batches of {figures['batch']})"),
    ]
    return output.table(rows)


@bench.command("pkcs11")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    help="How long each figure is measured.",
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def pkcs11(seconds: float, json_output: bool) -> None:
    """Signatures per second in a SoftHSM2 token against the same key type in-process, 1 and 2 threads."""
    from cli.bench_pkcs11 import run_pkcs11_benchmark

    with output.progress("measuring signatures through SoftHSM2 and in-process"):
        result = run_pkcs11_benchmark(seconds)
    output.emit(result.to_json(), json_output=json_output, human=_render_pkcs11)


def _render_pkcs11(figures: dict[str, Any]) -> str:
    rows = [
        (
            f"{f['alg']}, {f['threads']} thread(s)",
            f"token {f['token_signatures_per_second']:,.0f}/s, in-process "
            f"{f['in_process_signatures_per_second']:,.0f}/s, ratio {f['ratio_token_to_in_process']:.3f}",
        )
        for f in figures["figures"]
    ]
    return output.table([("module", figures["module"]), *rows])


@bench.command("tlog")
@click.option(
    "--entries",
    type=click.IntRange(min=1),
    default=10_000_000,
    show_default=True,
    help="Entries in the log the inclusion proofs are built from.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="How long 10 logs feed the witness.",
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def tlog(entries: int, seconds: float, json_output: bool) -> None:
    """Inclusion-proof length from tiles of a 10M-entry log; a witness's checkpoints per second from 10 logs over HTTPS."""
    from cli.bench_tlog import run_tlog_benchmark

    with output.progress(f"building a {entries:,}-entry log, then feeding a witness for {seconds:g}s"):
        figures = run_tlog_benchmark(entries=entries, seconds=seconds)
    output.emit(figures, json_output=json_output, human=_render_tlog)


def _render_tlog(figures: dict[str, Any]) -> str:
    targets = figures["targets"]
    proof_ok = figures["proof_hashes_max"] <= targets["proof_hashes_max"]
    rate_ok = figures["witness_checkpoints_per_second"] >= targets["witness_checkpoints_per_second"]
    rows = [
        ("log built from tiles", f"{figures['entries']:,} entries in {figures['log_build_seconds']} s"),
        (
            "inclusion proof",
            f"at most {figures['proof_hashes_max']} hashes over {figures['proofs_built']} leaves "
            f"(target <= {targets['proof_hashes_max']}: {output.status_word('met' if proof_ok else 'not met', proof_ok)}); "
            f"{figures['proof_ms_mean']} ms and {figures['tiles_read_per_proof']} tiles each",
        ),
        (
            "witness (HTTPS, 10 logs)",
            f"{figures['witness_checkpoints_per_second']:,} checkpoints/s "
            f"(target >= {targets['witness_checkpoints_per_second']}: "
            f"{output.status_word('met' if rate_ok else 'not met', rate_ok)}); "
            f"{figures['witness_checkpoints']:,} in {figures['witness_seconds']} s, "
            f"{figures['witness_failures']} refused",
        ),
        (
            "witness latency",
            f"p50 {figures['witness_p50_ms']} ms, p99 {figures['witness_p99_ms']} ms, max {figures['witness_max_ms']} ms",
        ),
    ]
    return output.table(rows)
