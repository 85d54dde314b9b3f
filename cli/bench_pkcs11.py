"""``clearance bench pkcs11``: what signing in a token costs, against the same key type in-process.

A scratch SoftHSM2 token is made in a temporary directory, an Ed25519 and a
P-256 key are generated in it, and signatures per second are measured through
:class:`~clearance.pkcs11.Pkcs11Signer` and through a file key
(:class:`~clearance.keys.SigningKey`) of the same type, on 1 and 2 threads,
in the same run. The message is the size of a credential's signing input.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.keys import Alg, Signer, SigningKey
from clearance.pkcs11 import Pkcs11Signer, generate_key_pair
from cli.softhsm import SoftHsm

MESSAGE = b"e" * 700
"""About the signing input of a personnel credential."""


@dataclass(frozen=True, slots=True)
class Figure:
    alg: str
    threads: int
    token_per_second: float
    in_process_per_second: float

    @property
    def ratio(self) -> float:
        return self.token_per_second / self.in_process_per_second

    def to_json(self) -> dict[str, Any]:
        return {
            "alg": self.alg,
            "threads": self.threads,
            "token_signatures_per_second": round(self.token_per_second, 1),
            "in_process_signatures_per_second": round(self.in_process_per_second, 1),
            "ratio_token_to_in_process": round(self.ratio, 4),
        }


@dataclass(frozen=True, slots=True)
class Pkcs11Benchmark:
    module: str
    seconds: float
    figures: tuple[Figure, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "seconds_per_figure": self.seconds,
            "figures": [f.to_json() for f in self.figures],
        }


def _rate(signer: Signer, threads: int, seconds: float) -> float:
    """Signatures per second by ``threads`` threads sharing ``signer``."""
    start = threading.Barrier(threads + 1)
    counts = [0] * threads
    deadline = [0.0]

    def work(slot: int) -> None:
        start.wait()
        n = 0
        while time.perf_counter() < deadline[0]:
            signer.sign(MESSAGE)
            n += 1
        counts[slot] = n

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - began)


@contextmanager
def _scratch_softhsm() -> Iterator[SoftHsm]:
    """A temporary SoftHSM2 directory this process's module reads, restored afterwards."""
    with tempfile.TemporaryDirectory(prefix="clearance-bench-") as directory:
        hsm = SoftHsm(Path(directory))
        saved = {name: os.environ.get(name) for name in hsm.environment()}
        os.environ.update(hsm.environment())
        try:
            yield hsm
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def run_pkcs11_benchmark(seconds: float) -> Pkcs11Benchmark:
    """Measure every (algorithm, threads) pair for ``seconds`` through the token and in-process.

    Raises:
        KeyAccessError: SoftHSM2 is not installed or the token failed.
    """
    figures: list[Figure] = []
    with _scratch_softhsm() as hsm:
        token = hsm.init_token("clearance-bench")
        algs: tuple[Alg, ...] = ("EdDSA", "ES256")
        for alg in algs:
            uri, _ = generate_key_pair(token.key_uri(f"bench-{alg}"), alg, hsm.config)
            in_token = Pkcs11Signer(uri, hsm.config)
            in_process = SigningKey.generate(alg)
            for threads in (1, 2):
                figures.append(
                    Figure(
                        alg,
                        threads,
                        _rate(in_token, threads, seconds),
                        _rate(in_process, threads, seconds),
                    )
                )
            in_token.close()
        module = hsm.module_path
    return Pkcs11Benchmark(module, seconds, tuple(figures))
