"""``clearance bench node-verify``: presentations verified per second through a node's local API.

A node's local API (``NodeService.Verify``, the real servicer, gatekeeper and token check)
runs in a child process over the trust material of :mod:`cli.bench_verify`; this process
is the organization's system calling it over loopback gRPC with batches of :data:`BATCH`
presentations, each bound to a nonce the node issued (``Challenge``, not timed). The
presentations are those of ``bench verify``: distinct credentials of distinct holders in
turn, half disclosing nothing and half ``employer``. The API's figure is the time of the
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

import secrets
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
    """Child process: a node's local API over in-memory trust material, until told to stop."""
    from cli.bench_verify import AUDIENCE, World
    from node.decision_log import DecisionLog
    from node.facility import FacilityIdentity
    from node.gatekeeper import Gatekeeper
    from node.server import start_local_api
    from node.servicers import NodeServicer
    from node.state import TrustedState
    from node.status import NodeStatus

    now = int(time.time())
    world = World(now)
    state = TrustedState(world.trust)
    with tempfile.TemporaryDirectory(prefix="clearance-bench-node-") as scratch:
        decisions = DecisionLog(Path(scratch) / "decisions.sqlite3")
        identity = FacilityIdentity(
            key=world.holders[0][1],
            credential=None,
            audience=AUDIENCE,
            trust=lambda: state.current,
            nonces=world.nonces,
            policy=world.policy,
            clock=lambda: now,
        )
        gatekeeper = Gatekeeper(
            state,
            audience=AUDIENCE,
            nonces=world.nonces,
            nonce_ttl=3600,
            policy=world.policy,
            clock=lambda: now,
            facility=identity,
            decisions=decisions,
            verify_threads=threads,
        )
        token = secrets.token_urlsafe(32)
        server = start_local_api(
            NodeServicer(gatekeeper, lambda: NodeStatus(None, [], [], None, False, [])), "127.0.0.1:0", token
        )
        holders = [(credential, holder.private_jwk()) for credential, holder in world.holders]
        connection.send((server.address, token, holders, world.issuer_key.jwk, now))
        connection.recv()
        server.stop(1.0)
        gatekeeper.close()
        decisions.close()


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
        address, token, holder_jwks, issuer_jwk, now = parent.recv()
        holders: list[Holder] = [
            (credential, SigningKey.from_private_jwk(jwk)) for credential, jwk in holder_jwks
        ]
        issuer_raw = PublicKey.from_jwk(issuer_jwk)._key
        assert isinstance(issuer_raw, Ed25519PublicKey)
        client = NodeClient(address, token)
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
