"""Signing credentials on every core for bulk issuance.

Python runs one thread at a time, and signing (SD-JWT construction and
Ed25519) is most of the cost of issuing. Bulk issuance therefore hands the
signing of large batches to a small pool of worker processes, one per core.
A worker holds the current issuing key (sent once, over the pool's private
pipe, when the pool starts) and turns plain specifications into SD-JWTs;
everything else — checks, status indices, the database, the audit log —
stays in the registry process.

Workers end with their registry: each watches its parent and exits when it
is gone (a ``kill -9`` of the registry included), and a pool belongs to one
issuing key: when the key changes, the old pool is shut down and a new one
started, so no process keeps a retired key.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from clearance.credentials import ClearanceClaim, StatusReference, issue_personnel_credential
from clearance.keys import PublicKey, SigningKey

MIN_BATCH = 256
"""Below this, signing in the registry process is faster than shipping the work out."""


@dataclass(frozen=True)
class CredentialSpec:
    """Everything needed to sign one personnel credential, as plain picklable data."""

    issuer: str
    subject: str
    holder_jwk: dict[str, str]
    jurisdiction: str
    level: str
    categories: tuple[str, ...]
    status_uri: str
    status_index: int
    issued_at: int
    expires_at: int
    personal: dict[str, str]


def sign_credential(key: SigningKey, spec: CredentialSpec) -> str:
    """The SD-JWT (with all its disclosures) for ``spec``."""
    return issue_personnel_credential(
        key,
        issuer=spec.issuer,
        subject=spec.subject,
        holder=PublicKey.from_jwk(spec.holder_jwk),
        clearance=ClearanceClaim.of(spec.jurisdiction, spec.level, spec.categories),
        status=StatusReference(spec.status_uri, spec.status_index),
        issued_at=spec.issued_at,
        expires_at=spec.expires_at,
        personal=spec.personal,
    ).serialize()


_WORKER_KEY: SigningKey | None = None
PARENT_CHECK_SECONDS = 0.25
"""How often a worker checks that the registry that started it is still its parent."""


def _start_worker(pem: bytes, parent: int) -> None:
    global _WORKER_KEY
    _WORKER_KEY = SigningKey.from_pem(pem)
    watch = threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True)
    watch.start()


def _exit_with_parent(parent: int) -> None:
    """End this worker (and the key it holds) once its registry is gone, even by ``kill -9``.

    An orphan is adopted by another process, so its parent id changes: that is
    the sign. (``PR_SET_PDEATHSIG`` would follow the thread that started the
    worker, not the process, and pool workers are started by passing threads.)
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _sign_chunk(specs: list[CredentialSpec]) -> list[str]:
    assert _WORKER_KEY is not None
    return [sign_credential(_WORKER_KEY, spec) for spec in specs]


class SigningPool:
    """Worker processes that sign with one issuing key."""

    def __init__(self, key: SigningKey, workers: int) -> None:
        self.kid = key.kid
        self._workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(key.to_pem(), os.getpid()),
        )

    def sign_many(self, specs: list[CredentialSpec]) -> list[str]:
        if not specs:  # start every worker now (they are spawned lazily)
            list(self._executor.map(_sign_chunk, [[] for _ in range(self._workers)]))
            return []
        size = -(-len(specs) // (self._workers * 4))
        chunks = [specs[i : i + size] for i in range(0, len(specs), size)]
        return [token for part in self._executor.map(_sign_chunk, chunks) for token in part]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_LOCK = threading.Lock()


class _Pools:
    """The signing pool of one registry context (recreated when the issuing key changes)."""

    def __init__(self) -> None:
        self.pool: SigningPool | None = None


def _pool(owner: Any, key: SigningKey, workers: int) -> SigningPool:
    holder: _Pools = owner.resource("signing.pools", _Pools)
    with _LOCK:
        if holder.pool is None or holder.pool.kid != key.kid:
            if holder.pool is not None:
                holder.pool.close()
            holder.pool = SigningPool(key, workers)
        return holder.pool


def sign_all(owner: Any, key: SigningKey, specs: list[CredentialSpec]) -> list[str]:
    """Sign ``specs`` with ``key``: on every core when the batch is large and there are cores."""
    workers = os.cpu_count() or 1
    if len(specs) < MIN_BATCH or workers < 2:
        return [sign_credential(key, spec) for spec in specs]
    return _pool(owner, key, workers).sign_many(specs)


def warm(owner: Any, key: SigningKey) -> None:
    """Start the workers ahead of the first bulk load (a server does this at start)."""
    workers = os.cpu_count() or 1
    if workers >= 2:
        pool = _pool(owner, key, workers)
        pool.sign_many([])


def close_pools(owner: Any) -> None:
    holder = owner.drop_resource("signing.pools")
    if holder is not None and holder.pool is not None:
        holder.pool.close()
