"""``clearance bench node-verify``: presentations verified per second through a node's local API.

A real node (enrolled with a registry served on loopback, both in a child process, set up
through their public interfaces) serves its local API (``NodeService.Verify``); this process
is the organization's system calling it over loopback gRPC with batches of :data:`BATCH`
presentations, each bound to a nonce the node issued (``Challenge``, not timed). The
presentations are made as ``bench verify`` makes them: distinct credentials of distinct
holders in turn, half disclosing nothing and half ``employer``. The API's figure is the time of the
``Verify`` call as its caller sees it: sending the batch, the node verifying every
presentation completely, and the results coming back. The baseline is the same as
``bench verify``'s: the two Ed25519 signature checks each presentation needs, called
straight on pyca/cryptography, measured here in rounds interleaved with the API's.

The node checks a batch on ``threads`` threads (``verify_threads``; a node's default is
one per core). pyca/cryptography releases the GIL while it verifies, so more threads
use more cores; the baseline is then measured on as many threads too, and the figure
to hold against the target is ``ratio_to_raw_same_threads``: the API against the raw
signatures on the same cores. ``ratio_to_raw`` compares with one core's raw rate.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.bench_verify import RawPair, verify_raw

BATCH = 100
TARGET_RATIO = 0.8


@dataclass(frozen=True)
class NodeVerifyResult:
    presentations_per_second: float
    raw_signature_pairs_per_second: float
    ratio: float
    rounds: int
    batch: int
    threads: int
    raw_same_threads_per_second: float
    ratio_same_threads: float

    def to_json(self) -> dict[str, Any]:
        return {
            "presentations_per_second": round(self.presentations_per_second, 1),
            "threads": self.threads,
            "raw_signature_pairs_per_second": round(self.raw_signature_pairs_per_second, 1),
            "ratio_to_raw": round(self.ratio, 3),
            "raw_signature_pairs_per_second_same_threads": round(self.raw_same_threads_per_second, 1),
            "ratio_to_raw_same_threads": round(self.ratio_same_threads, 3),
            "target_ratio": TARGET_RATIO,
            "target_met": self.ratio_same_threads >= TARGET_RATIO,
            "rounds": self.rounds,
            "batch": self.batch,
        }


def verify_raw_on_threads(
    issuer: Any, raw: Sequence[RawPair], pool: ThreadPoolExecutor | None, threads: int
) -> float:
    """Seconds the baseline takes over ``raw`` cut into one slice per thread of ``pool`` (``threads`` of them)."""
    if pool is None:
        return verify_raw(issuer, raw)
    size = -(-len(raw) // threads)
    started = time.perf_counter()
    for future in [pool.submit(verify_raw, issuer, raw[i : i + size]) for i in range(0, len(raw), size)]:
        future.result()
    return time.perf_counter() - started


def _serve(connection: Any, threads: int) -> None:
    """Child process: a registry and an enrolled node on loopback, until told to stop.

    Everything is set up through public interfaces: the registry is served and its staff
    call it through the typed client (an organization, favorable assessments, and
    :data:`~cli.bench_verify.CREDENTIALS` credentials issued to as many holders),
    and the node enrolls with a one-time token and runs as ``clearance node run`` would.
    """
    import json

    from clearance.client.credentials import IssueRequest
    from clearance.keys import SigningKey
    from cli.bench_registry import prepare
    from cli.bench_verify import CREDENTIALS
    from node.agent import NodeAgent
    from node.enrollment import enroll
    from registry.api import server
    from registry.setup import init_registry

    with tempfile.TemporaryDirectory(prefix="clearance-bench-node-") as scratch:
        base = Path(scratch)
        ctx, admin = init_registry(base / "registry", jurisdiction="JP")
        running = server.start(ctx, "127.0.0.1:0", insecure=True)
        agent = None
        try:
            endpoint = f"127.0.0.1:{running.port}"
            _connect, registry, assessments = prepare(endpoint, admin)
            holders = [SigningKey.generate() for _ in range(CREDENTIALS)]
            # One by one: bulk issuance signs in worker processes, which a daemonic child may not start.
            issued = [
                registry.credentials.issue(
                    IssueRequest(assessments[n % len(assessments)], json.dumps(holder.public.jwk))
                )
                for n, holder in enumerate(holders)
            ]
            organization = registry.organizations.list().items[0]
            token = registry.organizations.create_enrollment_token(organization.id).token
            issuer_jwk = json.loads(registry.publication.jwks())["keys"][0]
            registry.close()
            assert ctx.keys.root is not None
            enroll(
                base / "node",
                registry=endpoint,
                root_fingerprint=ctx.keys.root.kid,
                token=token,
                name="bench-node",
                registry_insecure=True,
                listen="127.0.0.1:0",
                settings={"verify_threads": threads},
            )
            agent = NodeAgent.open(base / "node")
            agent.start()
            deadline = time.monotonic() + 60
            while not (status := agent.status()).status_lists or status.home is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("the node did not sync")
                time.sleep(0.05)
            credentials = [(i.sd_jwt, h.private_jwk()) for i, h in zip(issued, holders, strict=True)]
            connection.send((str(base / "node"), credentials, issuer_jwk, int(time.time())))
            connection.recv()
        finally:
            if agent is not None:
                agent.stop(1.0)
            running.stop(1.0)
            ctx.close()


def run_node_verify_benchmark(seconds: float = 10.0, threads: int = 1) -> NodeVerifyResult:
    """Measure for about ``seconds`` with the node on ``threads`` verification threads.

    Returns the API rate, the raw rates (one thread, and ``threads``) and the ratios (medians of rounds).
    """
    import multiprocessing

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from clearance.keys import PublicKey, SigningKey
    from cli.bench_verify import Holder, present_in_turn
    from node.client import NodeClient

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, threads), daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise TimeoutError("the node did not start")
        directory, holder_jwks, issuer_jwk, now = parent.recv()
        holders: list[Holder] = [
            (credential, SigningKey.from_private_jwk(jwk)) for credential, jwk in holder_jwks
        ]
        issuer_raw = PublicKey.from_jwk(issuer_jwk)._key
        assert isinstance(issuer_raw, Ed25519PublicKey)
        client = NodeClient.for_directory(Path(directory))
        audience = client.challenge().audience
        api_rates: list[float] = []
        raw_rates: list[float] = []
        same_rates: list[float] = []
        pool = ThreadPoolExecutor(threads) if threads > 1 else None
        deadline = time.perf_counter() + seconds
        try:
            while time.perf_counter() < deadline or len(api_rates) < 3:
                batch, raw = present_in_turn(
                    holders,
                    len(api_rates) * BATCH,
                    BATCH,
                    audience=audience,
                    nonce=lambda: client.challenge().nonce,
                    issued_at=now,
                )
                raw_rates.append(len(raw) / verify_raw(issuer_raw, raw))
                same_rates.append(len(raw) / verify_raw_on_threads(issuer_raw, raw, pool, threads))
                started = time.perf_counter()
                results = client.verify(batch)
                api_rates.append(len(batch) / (time.perf_counter() - started))
                if not all(r.valid for r in results):
                    failed = next(r for r in results if not r.valid)
                    raise RuntimeError(
                        f"a benchmark presentation was refused: {failed.reason}: {failed.detail}"
                    )
        finally:
            client.close()
            if pool is not None:
                pool.shutdown()
    finally:
        parent.send("stop")
        process.join(timeout=15)
        if process.is_alive():
            process.kill()
    return NodeVerifyResult(
        presentations_per_second=statistics.median(api_rates),
        raw_signature_pairs_per_second=statistics.median(raw_rates),
        ratio=statistics.median(a / r for a, r in zip(api_rates, raw_rates, strict=True)),
        rounds=len(api_rates),
        batch=BATCH,
        threads=threads,
        raw_same_threads_per_second=statistics.median(same_rates),
        ratio_same_threads=statistics.median(a / r for a, r in zip(api_rates, same_rates, strict=True)),
    )
