"""Bulk-signing workers hold the issuing key: they never outlive it."""

from __future__ import annotations

import os

import pytest

from clearance.keys import SigningKey
from registry import signing
from tests.registry.conftest import Registry
from tests.registry.registry_process import alive, children_of, wait_until

pytestmark = pytest.mark.database


def specs(count: int) -> list[signing.CredentialSpec]:
    holder = SigningKey.generate().public.jwk
    return [
        signing.CredentialSpec(
            issuer="https://registry.jp.clearance.example",
            subject=f"pseudonym-{n}",
            holder_jwk=holder,
            jurisdiction="JP",
            level="SECRET",
            categories=("cyber-threat",),
            status_uri="https://registry.jp.clearance.example/status/1",
            status_index=n,
            issued_at=1_700_000_000,
            expires_at=1_800_000_000,
            personal={},
        )
        for n in range(count)
    ]


def test_a_new_issuing_key_retires_the_workers_that_held_the_old_one(registry: Registry) -> None:
    batch = specs(signing.MIN_BATCH)
    before = set(children_of(os.getpid(), tracker=False))
    old_key, new_key = SigningKey.generate(), SigningKey.generate()

    assert len(signing.sign_all(registry.ctx, old_key, batch)) == len(batch)
    old_workers = set(children_of(os.getpid(), tracker=False)) - before
    assert old_workers, "a large batch is signed by worker processes"

    assert len(signing.sign_all(registry.ctx, new_key, batch)) == len(batch)
    wait_until(lambda: not any(alive(pid) for pid in old_workers), what="the old key's workers ended")
    new_workers = set(children_of(os.getpid(), tracker=False)) - before - old_workers
    assert new_workers

    signing.close_pools(registry.ctx)
    wait_until(
        lambda: not any(alive(pid) for pid in new_workers), what="the workers ended with their registry"
    )
