"""``clearance bench verify``: offline presentation verification against raw signature checks.

Both are measured in the same process on one core, in interleaved rounds of :data:`BATCH`
presentations so that noise from a shared machine hits both alike; each figure is the
median over rounds, and so is their ratio.

* The **full check** is :func:`clearance.verify.verify_presentation` on each presentation:
  splitting it, decoding the credential (strict base64url and JSON), finding the issuer's
  bundle and issuing key, both signatures, the disclosures against their digests, the
  claims (type, validity window, level and categories against the issuer's bundle), the
  key-binding JWT (audience, ``sd_hash``, age), consuming its nonce, and the status bit
  from a status list held for the issuer, within the staleness policy.
* The **baseline** is the two Ed25519 verifications each presentation needs (issuer over
  the credential, holder over the key-binding JWT), called straight on pyca/cryptography
  key objects built beforehand, over exactly the bytes the full check verifies.

The work is what a verifier really meets: :data:`CREDENTIALS` credentials of distinct
holders (each its own key, pseudonym, status index and employer, at one of three levels
and two sets of categories) presented in turn, every presentation bound to a nonce of its
own. No credential is presented twice in a round, so nothing cached per credential could
help. As the wallet does unless asked, half the presentations disclose nothing; the other
half disclose ``employer``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clearance.bundle import IssuingKey, StatusListLocation, TrustBundle
from clearance.credentials import ClearanceClaim, StatusReference, issue_personnel_credential
from clearance.encoding import b64url_decode
from clearance.keys import SigningKey
from clearance.sdjwt import present
from clearance.statuslist import StatusList, sign_status_list
from clearance.trust import TrustStore
from clearance.verify import MemoryNonceStore, StalenessPolicy, verify_presentation

AUDIENCE = "bench-node"
BATCH = 400
CREDENTIALS = 512
"""Distinct credentials presented in turn: more than :data:`BATCH`, so none repeats in a round."""
_REVOKED_EVERY = 97
"""Every 97th entry of the status list is revoked; benchmark credentials avoid those."""
_LEVELS = ("CONFIDENTIAL", "SECRET", "TOP_SECRET")
_CATEGORIES = (("cyber-threat", "joint-research"), ("supply-chain",))

Holder = tuple[str, SigningKey]
"""A serialized credential (every disclosure) and its holder's key."""
RawPair = tuple[bytes, bytes, Ed25519PublicKey, bytes, bytes]
"""What the baseline verifies: credential input and signature, holder key, KB input and signature."""


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


class World:
    """One registry's trust material and :data:`CREDENTIALS` holders with a credential each, in memory."""

    def __init__(self, now: int, credentials: int = CREDENTIALS) -> None:
        self.now = now
        root, issuing = SigningKey.generate(), SigningKey.generate()
        uri = "https://registry.jp.example/statuslists/1"
        bundle = TrustBundle(
            issuer="https://registry.jp.example",
            jurisdiction="JP",
            version=1,
            issued_at=now,
            expires_at=now + 86400,
            root=root.kid,
            issuing_keys=(IssuingKey(issuing.public, now - 60, now + 86400 * 90),),
            levels=_LEVELS,
            categories=("cyber-threat", "supply-chain", "industrial-strategy", "joint-research"),
            status_lists=(StatusListLocation(uri, 2),),
        )
        status = StatusList(2, 1 << 20)
        for idx in range(0, 1 << 20, _REVOKED_EVERY):
            status.set(idx, 1)
        self.trust = TrustStore(root.public)
        self.trust.update_bundle(bundle.sign(root), now)
        self.trust.update_status_list(
            sign_status_list(status, issuing, uri=uri, issued_at=now, ttl=300, expires_at=now + 86400, seq=1),
            now,
        )
        self.holders: list[Holder] = []
        for n in range(credentials):
            holder = SigningKey.generate()
            index = 12_346 + 7 * n
            if index % _REVOKED_EVERY == 0:
                index += 1
            credential = issue_personnel_credential(
                issuing,
                issuer=bundle.issuer,
                subject=f"bench-subject-{n:05d}",
                holder=holder.public,
                clearance=ClearanceClaim("JP", _LEVELS[n % 3], _CATEGORIES[n // 3 % 2]),
                status=StatusReference(uri, index),
                issued_at=now,
                expires_at=now + 86400 * 365,
                personal={"given_name": "Hanako", "family_name": "Yamada", "employer": f"Example KK {n}"},
            )
            self.holders.append((credential.serialize(), holder))
        self.nonces = MemoryNonceStore(ttl=3600)
        self.policy = StalenessPolicy()
        self.issuer_key = issuing.public
        issuer_raw = issuing.public._key  # the pyca object itself: the baseline has no wrapper at all
        assert isinstance(issuer_raw, Ed25519PublicKey)
        self.issuer_raw = issuer_raw
        self._next = 0

    def presentations(self, count: int) -> tuple[list[str], list[RawPair]]:
        """The next ``count`` presentations to this verifier, and what the baseline checks for each."""
        start, self._next = self._next, self._next + count
        return present_in_turn(
            self.holders,
            start,
            count,
            audience=AUDIENCE,
            nonce=lambda: self.nonces.issue(self.now),
            issued_at=self.now,
        )


def present_in_turn(
    holders: Sequence[Holder],
    start: int,
    count: int,
    *,
    audience: str,
    nonce: Callable[[], str],
    issued_at: int,
) -> tuple[list[str], list[RawPair]]:
    """Presentations of the credentials ``start``, ``start + 1``, ... (cyclically), each with a fresh
    nonce; every other one discloses ``employer``. Also returns, for each, what the baseline verifies.
    """
    presentations: list[str] = []
    raw: list[RawPair] = []
    for n in range(start, start + count):
        credential, holder = holders[n % len(holders)]
        presentation = present(
            credential,
            holder,
            disclose=("employer",) if n % 2 else (),
            audience=audience,
            nonce=nonce(),
            issued_at=issued_at,
        )
        holder_raw = holder.public._key
        assert isinstance(holder_raw, Ed25519PublicKey)
        jwt, _, rest = presentation.partition("~")
        key_binding = rest.rpartition("~")[2]
        h, p, s = jwt.split(".")
        kh, kp, ks = key_binding.split(".")
        raw.append(
            (f"{h}.{p}".encode(), b64url_decode(s), holder_raw, f"{kh}.{kp}".encode(), b64url_decode(ks))
        )
        presentations.append(presentation)
    return presentations, raw


def verify_raw(issuer: Ed25519PublicKey, raw: Sequence[RawPair]) -> float:
    """Seconds the baseline takes over ``raw``: two pyca/cryptography Ed25519 verifications each."""
    started = time.perf_counter()
    for message, signature, holder, kb_message, kb_signature in raw:
        issuer.verify(signature, message)
        holder.verify(kb_signature, kb_message)
    return time.perf_counter() - started


def run_verify_benchmark(seconds: float = 10.0) -> VerifyBenchResult:
    """Measure for about ``seconds``; return rates and their ratio (median of rounds)."""
    now = int(time.time())
    world = World(now)
    full_rates: list[float] = []
    raw_rates: list[float] = []
    verified = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(full_rates) < 3:
        batch, raw = world.presentations(BATCH)
        raw_rates.append(len(raw) / verify_raw(world.issuer_raw, raw))
        started = time.perf_counter()
        for presentation in batch:
            verify_presentation(
                presentation,
                trust=world.trust,
                audience=AUDIENCE,
                nonces=world.nonces,
                now=now,
                policy=world.policy,
            )
        full_rates.append(len(batch) / (time.perf_counter() - started))
        verified += len(batch)
    ratios = [f / r for f, r in zip(full_rates, raw_rates, strict=True)]
    return VerifyBenchResult(
        presentations_per_second=statistics.median(full_rates),
        raw_signature_pairs_per_second=statistics.median(raw_rates),
        ratio=statistics.median(ratios),
        rounds=len(full_rates),
        presentations_verified=verified,
    )
