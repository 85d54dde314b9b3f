"""``clearance bench verify``: offline presentation verification against raw signature checks.

Both are measured in the same process, interleaved in rounds so that noise
from a shared machine hits both alike: for every presentation, the *baseline*
is the two Ed25519 signature verifications it needs (issuer over the
credential, holder over the key-binding JWT), called straight on
pyca/cryptography; the *full* check is :func:`clearance.verify.verify_presentation`
(parsing, both signatures, disclosures, key binding, nonce, status, policy).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clearance.bundle import IssuingKey, StatusListLocation, TrustBundle
from clearance.credentials import ClearanceClaim, StatusReference, issue_personnel_credential
from clearance.encoding import b64url_decode
from clearance.keys import SigningKey
from clearance.sdjwt import present, split
from clearance.statuslist import StatusList, sign_status_list
from clearance.trust import TrustStore
from clearance.verify import MemoryNonceStore, StalenessPolicy, verify_presentation

_AUDIENCE = "bench-node"
_BATCH = 400


@dataclass(frozen=True)
class VerifyBenchResult:
    presentations_per_second: float
    raw_signature_pairs_per_second: float
    ratio: float
    rounds: int
    presentations_verified: int

    def to_json(self) -> dict[str, float | int]:
        return {
            "presentations_per_second": round(self.presentations_per_second, 1),
            "raw_signature_pairs_per_second": round(self.raw_signature_pairs_per_second, 1),
            "ratio_to_raw": round(self.ratio, 3),
            "target_ratio": 0.8,
            "rounds": self.rounds,
            "presentations_verified": self.presentations_verified,
        }


class _World:
    """One registry's trust material and one holder, built in memory."""

    def __init__(self, now: int) -> None:
        self.now = now
        root, issuing, self.holder = (
            SigningKey.generate(),
            SigningKey.generate(),
            SigningKey.generate(),
        )
        uri = "https://registry.jp.example/statuslists/1"
        bundle = TrustBundle(
            issuer="https://registry.jp.example",
            jurisdiction="JP",
            version=1,
            issued_at=now,
            expires_at=now + 86400,
            root=root.kid,
            issuing_keys=(IssuingKey(issuing.public, now - 60, now + 86400 * 90),),
            levels=("CONFIDENTIAL", "SECRET", "TOP_SECRET"),
            categories=("cyber-threat", "supply-chain", "industrial-strategy", "joint-research"),
            status_lists=(StatusListLocation(uri, 2),),
        )
        status = StatusList(2, 1 << 20)
        for idx in range(0, 1 << 20, 97):
            status.set(idx, 1)
        self.trust = TrustStore(root.public)
        self.trust.update_bundle(bundle.sign(root), now)
        self.trust.update_status_list(
            sign_status_list(status, issuing, uri=uri, issued_at=now, ttl=300, expires_at=now + 86400, seq=1),
            now,
        )
        self.credential = issue_personnel_credential(
            issuing,
            issuer=bundle.issuer,
            subject="bench-subject",
            holder=self.holder.public,
            clearance=ClearanceClaim("JP", "SECRET", ("cyber-threat", "joint-research")),
            status=StatusReference(uri, 12_346),
            issued_at=now,
            expires_at=now + 86400 * 365,
            personal={"given_name": "Hanako", "family_name": "Yamada", "employer": "Example KK"},
        ).serialize()
        self.nonces = MemoryNonceStore(ttl=3600)
        self.policy = StalenessPolicy()
        self.issuer_key = issuing.public
        self.holder_key = self.holder.public

    def presentations(self, count: int) -> list[str]:
        return [
            present(
                self.credential,
                self.holder,
                disclose=("given_name", "family_name"),
                audience=_AUDIENCE,
                nonce=self.nonces.issue(self.now),
                issued_at=self.now,
            )
            for _ in range(count)
        ]

    def raw_inputs(self, presentations: list[str]) -> list[tuple[bytes, bytes, bytes, bytes]]:
        out = []
        for p in presentations:
            parts = split(p)
            h, pl, s = parts.jwt.split(".")
            assert parts.key_binding is not None
            kh, kp, ks = parts.key_binding.split(".")
            out.append((f"{h}.{pl}".encode(), b64url_decode(s), f"{kh}.{kp}".encode(), b64url_decode(ks)))
        return out


def run_verify_benchmark(seconds: float = 10.0, *, clock: object = time.perf_counter) -> VerifyBenchResult:
    """Measure for about ``seconds``; return rates and their ratio (median of rounds)."""
    now = int(time.time())
    world = _World(now)
    # The pyca key objects themselves: the baseline has no wrapper at all.
    issuer_raw = world.issuer_key._key
    holder_raw = world.holder_key._key
    assert isinstance(issuer_raw, Ed25519PublicKey)
    assert isinstance(holder_raw, Ed25519PublicKey)
    full_rates: list[float] = []
    raw_rates: list[float] = []
    verified = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(full_rates) < 3:
        batch = world.presentations(_BATCH)
        raw = world.raw_inputs(batch)
        start = time.perf_counter()
        for msg, sig, kb_msg, kb_sig in raw:
            issuer_raw.verify(sig, msg)
            holder_raw.verify(kb_sig, kb_msg)
        raw_rates.append(len(raw) / (time.perf_counter() - start))
        start = time.perf_counter()
        for presentation in batch:
            verify_presentation(
                presentation,
                trust=world.trust,
                audience=_AUDIENCE,
                nonces=world.nonces,
                now=now,
                policy=world.policy,
            )
        full_rates.append(len(batch) / (time.perf_counter() - start))
        verified += len(batch)
    ratios = [f / r for f, r in zip(full_rates, raw_rates, strict=True)]
    return VerifyBenchResult(
        presentations_per_second=statistics.median(full_rates),
        raw_signature_pairs_per_second=statistics.median(raw_rates),
        ratio=statistics.median(ratios),
        rounds=len(full_rates),
        presentations_verified=verified,
    )
