"""``clearance bench tlog``: inclusion proofs in a 10-million-entry log, and a witness under 10 logs.

(a) A log of N trust-event entries is built with the real tile writer (hash
tiles kept in memory as a store would keep rows); an inclusion proof is then
built *from the tiles* (each checked against the root) for leaves across the
log, verified, and its length in hashes reported (target: at most 24).

(b) A witness serves ``POST /add-checkpoint`` over HTTPS on loopback with its
real SQLite state; 10 logs, each in its own client thread with a keep-alive
connection, grow, sign a checkpoint and submit it with a consistency proof,
one after another, for the given time. Reported: checkpoints cosigned per
second (target: at least 1) and the latency percentiles.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import random
import ssl
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.keys import SigningKey
from clearance.transparency.checkpoint import Checkpoint, sign_checkpoint
from clearance.transparency.cosignature import verify_cosignatures
from clearance.transparency.entries import EventType, TrustEvent
from clearance.transparency.merkle import consistency_proof, inclusion_proof, leaf_hash, verify_inclusion
from clearance.transparency.note import Ed25519NoteSigner
from clearance.transparency.tile_reader import TileHashReader
from clearance.transparency.tile_writer import TileEdge, append_entries
from clearance.transparency.tiles import Tile

PROOF_TARGET = 24
RATE_TARGET = 1.0
LOGS = 10
BATCH = 1 << 16


class TileRows:
    """Hash tiles as rows keyed by ``(level, index)``, each the widest version written (a store's table)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, int], bytes] = {}
        self.reads = 0

    def write(self, tiles: Sequence[tuple[Tile, bytes]]) -> None:
        for tile, data in tiles:
            self.rows[tile.key] = data

    def read_tiles(self, tiles: Sequence[Tile]) -> list[bytes]:
        self.reads += len(tiles)
        return [self.rows[tile.key][: tile.width * 32] for tile in tiles]


def _entries(start: int, count: int, prefix: bytes) -> list[bytes]:
    """Format-1 trust-event entries whose 32-byte commitment is the entry's number."""
    return [prefix + i.to_bytes(32, "big") for i in range(start, start + count)]


@dataclass(frozen=True)
class ProofFigures:
    entries: int
    build_seconds: float
    proof_hashes_max: int
    proofs_built: int
    proof_ms_mean: float
    tiles_read_per_proof: float


def measure_proofs(entries: int, seed: int = 1) -> ProofFigures:
    """Build a log of ``entries`` entries from tiles and prove leaves across it."""
    template = TrustEvent.of(
        EventType.CREDENTIAL_ISSUED,
        b"x",
        at=datetime.datetime(2026, 9, 21, tzinfo=datetime.UTC),
        level="SECRET",
    ).encode()
    prefix = template[:-32]
    rows = TileRows()
    edge = TileEdge(0)
    started = time.perf_counter()
    while edge.size < entries:
        result = append_entries(edge, _entries(edge.size, min(BATCH, entries - edge.size), prefix))
        rows.write(result.tiles)
        edge = result.edge
    build_seconds = time.perf_counter() - started
    root = edge.root
    rng = random.Random(seed)
    indexes = sorted({0, entries // 2, entries - 1, *(rng.randrange(entries) for _ in range(20))})
    longest, spent = 0, 0.0
    rows.reads = 0
    for index in indexes:
        began = time.perf_counter()
        proof = inclusion_proof(index, entries, TileHashReader(entries, root, rows))
        spent += time.perf_counter() - began
        verify_inclusion(leaf_hash(prefix + index.to_bytes(32, "big")), index, entries, proof, root)
        longest = max(longest, len(proof))
    return ProofFigures(
        entries=entries,
        build_seconds=round(build_seconds, 2),
        proof_hashes_max=longest,
        proofs_built=len(indexes),
        proof_ms_mean=round(spent / len(indexes) * 1000, 3),
        tiles_read_per_proof=round(rows.reads / len(indexes), 1),
    )


class _BenchLog:
    """One registry's log for the witness benchmark: tiles in memory, a signing key, a keep-alive client."""

    def __init__(self, number: int, port: int, context: ssl.SSLContext) -> None:
        self.origin = f"registry-{number}.bench.clearance.example/log"
        self.signer = Ed25519NoteSigner(self.origin, SigningKey.generate())
        self.rows = TileRows()
        self.edge = TileEdge(0)
        self.witnessed = 0
        self.connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
        self.latencies: list[float] = []
        self.failures = 0
        self.last_reply = b""

    def submit_next(self, grow: int) -> None:
        old = self.edge.size
        result = append_entries(self.edge, _entries(old, grow, b"\x01\x09\x00\x00\x00\x00\x00"))
        self.rows.write(result.tiles)
        self.edge = result.edge
        size, root = self.edge.size, self.edge.root
        proof = consistency_proof(old, size, TileHashReader(size, root, self.rows)) if old else []
        note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
        body = (f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof) + "\n").encode()
        began = time.perf_counter()
        self.connection.request("POST", "/add-checkpoint", body=body + note)
        response = self.connection.getresponse()
        reply = response.read()
        self.latencies.append(time.perf_counter() - began)
        if response.status != 200:
            self.failures += 1
            return
        self.last_reply = note + reply


@dataclass(frozen=True)
class WitnessFigures:
    logs: int
    checkpoints: int
    failures: int
    seconds: float
    checkpoints_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def measure_witness(seconds: float, *, grow: int = 100) -> WitnessFigures:
    """Run a witness over HTTPS on loopback and feed it checkpoints from 10 logs for ``seconds``."""
    from clearance.web import TlsPem, start
    from oversight.witness import Witness
    from oversight.witness_home import WitnessHome
    from oversight.witness_http import WITNESS_LIMITS, witness_app

    with tempfile.TemporaryDirectory(prefix="clearance-bench-witness-") as scratch:
        home = WitnessHome.init(Path(scratch) / "witness", "bench.clearance.example/witness", ["127.0.0.1"])
        store = home.store()
        witness = Witness(store, home.signer(), lambda: datetime.datetime.now(datetime.UTC))
        server = start(
            witness_app(witness),
            "127.0.0.1:0",
            tls=TlsPem(home.tls.cert, home.tls.key),
            limits=WITNESS_LIMITS,
        )
        try:
            context = ssl.create_default_context(cafile=str(home.tls.ca))
            logs = [_BenchLog(n, server.port, context) for n in range(LOGS)]
            for log in logs:
                store.add_log(log.origin, log.signer.verifier.vkey)
            barrier = threading.Barrier(LOGS + 1)
            deadline: list[float] = []

            def drive(log: _BenchLog) -> None:
                barrier.wait()
                while time.perf_counter() < deadline[0] or not log.latencies:
                    log.submit_next(grow)
                log.connection.close()

            threads = [threading.Thread(target=drive, args=(log,), name=log.origin) for log in logs]
            for thread in threads:
                thread.start()
            began = time.perf_counter()
            deadline.append(began + seconds)
            barrier.wait()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - began
            for log in logs:  # every log's last reply is a valid cosignature from this witness
                verify_cosignatures(
                    log.last_reply,
                    log=log.signer.verifier,
                    origin=log.origin,
                    witnesses=[witness.signer.verifier],
                    threshold=1,
                    now=datetime.datetime.now(datetime.UTC),
                )
        finally:
            server.stop()
    latencies = sorted(latency for log in logs for latency in log.latencies)
    done = len(latencies) - sum(log.failures for log in logs)
    return WitnessFigures(
        logs=LOGS,
        checkpoints=done,
        failures=sum(log.failures for log in logs),
        seconds=round(elapsed, 2),
        checkpoints_per_second=round(done / elapsed, 1),
        p50_ms=round(_percentile(latencies, 0.50) * 1000, 2),
        p99_ms=round(_percentile(latencies, 0.99) * 1000, 2),
        max_ms=round(latencies[-1] * 1000, 2),
    )


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def run_tlog_benchmark(*, entries: int, seconds: float) -> dict[str, Any]:
    """Both measurements, as plain data with their targets."""
    proofs = measure_proofs(entries)
    witness = measure_witness(seconds)
    return {
        "entries": proofs.entries,
        "log_build_seconds": proofs.build_seconds,
        "proof_hashes_max": proofs.proof_hashes_max,
        "proofs_built": proofs.proofs_built,
        "proof_ms_mean": proofs.proof_ms_mean,
        "tiles_read_per_proof": proofs.tiles_read_per_proof,
        "witness_logs": witness.logs,
        "witness_checkpoints": witness.checkpoints,
        "witness_failures": witness.failures,
        "witness_seconds": witness.seconds,
        "witness_checkpoints_per_second": witness.checkpoints_per_second,
        "witness_p50_ms": witness.p50_ms,
        "witness_p99_ms": witness.p99_ms,
        "witness_max_ms": witness.max_ms,
        "targets": {"proof_hashes_max": PROOF_TARGET, "witness_checkpoints_per_second": RATE_TARGET},
    }
