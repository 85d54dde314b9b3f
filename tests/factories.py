"""Factories for trust material: a registry's keys, bundle, status list and credentials.

Everything is built through the public API of :mod:`clearance`, with time
passed in, so tests read like the behaviour they protect::

    world = RegistryWorld.create("JP", now=NOW)
    verifier = Verifier.synced(world)
    credential, holder = world.issue(level="SECRET")
    presentation = present_credential(credential, holder, nonce=verifier.challenge())
    verifier.verify(presentation)
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from clearance.agreement import Agreement, Party
from clearance.bundle import IssuingKey, RootRotation, StatusListLocation, TrustBundle
from clearance.certificates import make_issuer_ca, make_issuing_certificate
from clearance.credentials import (
    ClearanceClaim,
    StatusReference,
    issue_facility_credential,
    issue_personnel_credential,
)
from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import Reason, VerificationError
from clearance.keys import SigningKey
from clearance.sdjwt import present
from clearance.statuslist import StatusList, sign_status_list
from clearance.trust import TrustStore
from clearance.verify import (
    MemoryNonceStore,
    StalenessPolicy,
    VerifiedPresentation,
    verify_presentation,
    verify_presentations,
)

NOW = 1_790_000_000  # 2026-09-21, a fixed instant: tests never read the clock
DAY = 86_400
LEVELS = ("CONFIDENTIAL", "SECRET", "TOP_SECRET")
CATEGORIES = ("cyber-threat", "supply-chain", "industrial-strategy", "joint-research")


@dataclass
class Holder:
    """A cleared person's wallet: a key and the credentials issued to it."""

    key: SigningKey = field(default_factory=SigningKey.generate)


@dataclass
class RegistryWorld:
    """One registry's trust material."""

    jurisdiction: str
    now: int
    root: SigningKey
    issuing: SigningKey
    issuer: str
    status_uri: str
    status_list: StatusList
    version: int = 1
    seq: int = 1
    agreements: list[dict[str, Any]] = field(default_factory=list)
    issuing_window: tuple[int, int] | None = None
    next_index: int = 7
    ca: SigningKey | None = None
    """The issuer CA key on the HAIP profile (ES256 issuing key with an x5c chain)."""
    ca_der: bytes = b""
    x5c: tuple[bytes, ...] = ()

    @classmethod
    def create(
        cls,
        jurisdiction: str = "JP",
        *,
        now: int = NOW,
        size: int = 131_072,
        haip: bool = False,
        issuer: str | None = None,
    ) -> RegistryWorld:
        """A registry; ``haip`` puts it on the HAIP profile (ES256 issuing key, issuer CA, x5c)."""
        issuer = issuer or f"https://registry.{jurisdiction.lower()}.example"
        world = cls(
            jurisdiction=jurisdiction,
            now=now,
            root=SigningKey.generate(),
            issuing=SigningKey.generate("ES256" if haip else "EdDSA"),
            issuer=issuer,
            status_uri=f"{issuer}/statuslists/1",
            status_list=StatusList(2, size),
        )
        if haip:
            world.ca = SigningKey.generate("ES256")
            world.ca_der = make_issuer_ca(
                world.ca,
                jurisdiction=jurisdiction,
                issuer=world.issuer,
                not_before=now - 365 * DAY,
                not_after=now + 5 * 365 * DAY,
            )
            world.x5c = (world.leaf_certificate(),)
        return world

    def leaf_certificate(
        self, key: SigningKey | None = None, *, not_before: int | None = None, not_after: int | None = None
    ) -> bytes:
        """A leaf certificate from this registry's CA for ``key`` (the issuing key by default)."""
        assert self.ca is not None, "a HAIP world"
        return make_issuing_certificate(
            self.ca,
            self.ca_der,
            (key or self.issuing).public,
            issuer=self.issuer,
            not_before=self.now - 30 * DAY if not_before is None else not_before,
            not_after=self.now + 365 * DAY if not_after is None else not_after,
        )

    # -- signed documents ------------------------------------------------------

    def bundle(
        self,
        *,
        version: int | None = None,
        expires_in: int = DAY,
        issued_at: int | None = None,
        root: SigningKey | None = None,
        **overrides: Any,
    ) -> str:
        window = self.issuing_window or (self.now - 30 * DAY, self.now + 365 * DAY)
        signer = root or self.root
        fields: dict[str, Any] = dict(
            issuer=self.issuer,
            jurisdiction=self.jurisdiction,
            version=self.version if version is None else version,
            issued_at=self.now if issued_at is None else issued_at,
            expires_at=(self.now if issued_at is None else issued_at) + expires_in,
            root=signer.kid,
            issuing_keys=(IssuingKey(self.issuing.public, *window),),
            levels=LEVELS,
            categories=CATEGORIES,
            status_lists=(StatusListLocation(self.status_uri, 2),),
            agreements=tuple(self.agreements),
            issuer_cas=(self.ca_der,) if self.ca_der else (),
        )
        fields.update(overrides)
        return TrustBundle(**fields).sign(signer)

    def status_token(
        self,
        *,
        issued_at: int | None = None,
        seq: int | None = None,
        expires_in: int = DAY,
        key: SigningKey | None = None,
    ) -> str:
        at = self.now if issued_at is None else issued_at
        return sign_status_list(
            self.status_list,
            key or self.issuing,
            uri=self.status_uri,
            issued_at=at,
            ttl=300,
            expires_at=at + expires_in,
            seq=self.seq if seq is None else seq,
            x5c=self.x5c if key is None else (),
        )

    def issue(
        self,
        holder: Holder | None = None,
        *,
        level: str = "SECRET",
        categories: tuple[str, ...] = ("cyber-threat", "joint-research"),
        issued_at: int | None = None,
        lifetime: int = 365 * DAY,
        index: int | None = None,
        personal: dict[str, Any] | None = None,
        key: SigningKey | None = None,
        x5c: tuple[bytes, ...] | None = None,
    ) -> tuple[str, Holder]:
        holder = holder or Holder()
        if index is None:
            index, self.next_index = self.next_index, self.next_index + 1
        at = self.now if issued_at is None else issued_at
        issued = issue_personnel_credential(
            key or self.issuing,
            issuer=self.issuer,
            subject=f"sub-{index}",
            holder=holder.key.public,
            clearance=ClearanceClaim(self.jurisdiction, level, categories),
            status=StatusReference(self.status_uri, index),
            issued_at=at,
            expires_at=at + lifetime,
            personal=personal
            if personal is not None
            else {
                "given_name": "Hanako",
                "family_name": "Yamada",
                "birthdate": "1988-04-01",
                "nationalities": [self.jurisdiction],
                "employer": "Example KK",
            },
            x5c=(self.x5c if key is None else ()) if x5c is None else x5c,
        )
        return issued.serialize(), holder

    def facility(self, node_key: SigningKey, *, org_id: str = "org-1", level: str = "SECRET") -> str:
        index, self.next_index = self.next_index, self.next_index + 1
        return issue_facility_credential(
            self.issuing,
            issuer=self.issuer,
            subject=f"facility-{org_id}",
            node_key=node_key.public,
            organization={"id": org_id, "name": "Example KK"},
            clearance=ClearanceClaim(self.jurisdiction, level, CATEGORIES),
            status=StatusReference(self.status_uri, index),
            issued_at=self.now,
            expires_at=self.now + 365 * DAY,
            x5c=self.x5c,
        ).serialize()

    def agree_with(
        self,
        other: RegistryWorld,
        *,
        expires_in: int = 365 * DAY,
        levels: list[tuple[str, str]] | None = None,
    ) -> Agreement:
        """An agreement between this registry and ``other``, signed by both roots."""
        proposal = Agreement.propose(
            self.root,
            agreement_id=f"{self.jurisdiction}-{other.jurisdiction}-1",
            parties=(
                Party(self.jurisdiction, self.root.public, self.issuer),
                Party(other.jurisdiction, other.root.public, other.issuer),
            ),
            levels=levels or [("CONFIDENTIAL", "CONFIDENTIAL"), ("SECRET", "SECRET")],
            categories={self.jurisdiction: list(CATEGORIES), other.jurisdiction: list(CATEGORIES)},
            issued_at=self.now,
            not_before=self.now - DAY,
            expires_at=self.now + expires_in,
        )
        return proposal.countersign(other.root)

    def rotate_root(self, *, issued_at: int | None = None) -> RootRotation:
        """Replace the root key by a new one, endorsed by the old and the new (as TUF does)."""
        new = SigningKey.generate()
        rotation = RootRotation.create(
            jurisdiction=self.jurisdiction,
            version=self.version,
            old=self.root,
            new=new,
            issued_at=self.now if issued_at is None else issued_at,
        )
        self.root = new
        return rotation


def present_credential(
    credential: str,
    holder: Holder,
    *,
    nonce: str,
    audience: str = "node-a",
    disclose: tuple[str, ...] = (),
    issued_at: int = NOW,
) -> str:
    return present(
        credential,
        holder.key,
        disclose=disclose,
        audience=audience,
        nonce=nonce,
        issued_at=issued_at,
    )


@dataclass
class Verifier:
    """A node's verification state, synced from ``world``."""

    trust: TrustStore
    nonces: MemoryNonceStore = field(default_factory=MemoryNonceStore)
    policy: StalenessPolicy = field(default_factory=StalenessPolicy)
    audience: str = "node-a"

    @classmethod
    def synced(cls, world: RegistryWorld, *, now: int = NOW) -> Verifier:
        trust = TrustStore(world.root.public)
        trust.update_bundle(world.bundle(), now)
        trust.update_status_list(world.status_token(), now)
        return cls(trust)

    @classmethod
    def trusting(
        cls,
        home: RegistryWorld,
        *partners: RegistryWorld,
        now: int = NOW,
        agreement_expires_in: int = 365 * DAY,
        bundle_expires_in: int = DAY,
    ) -> Verifier:
        """A node of ``home`` that also trusts each partner through an agreement in force.

        Each agreement is listed in both registries' bundles, as a real one would be.
        """
        for partner in partners:
            agreement = home.agree_with(partner, expires_in=agreement_expires_in).to_json()
            home.agreements.append(agreement)
            partner.agreements.append(agreement)
        trust = TrustStore(home.root.public)
        trust.update_bundle(home.bundle(expires_in=bundle_expires_in), now)
        trust.update_status_list(home.status_token(), now)
        for partner in partners:
            trust.update_foreign_bundle(partner.bundle(expires_in=bundle_expires_in), now)
            trust.update_status_list(partner.status_token(), now)
        return cls(trust)

    def challenge(self, now: int = NOW) -> str:
        """A fresh nonce for a holder to bind a presentation to."""
        return self.nonces.issue(now)

    def verify_batch(
        self, presentations: list[str], *, threads: int = 1, now: int = NOW
    ) -> list[VerifiedPresentation | VerificationError]:
        """Verify a batch as a node's Verify call does, its checks cut across ``threads`` threads."""
        with ThreadPoolExecutor(threads) as pool:
            return verify_presentations(
                presentations,
                trust=self.trust,
                audience=self.audience,
                nonces=self.nonces,
                now=now,
                policy=self.policy,
                executor=pool,
                slices=threads,
            )

    def verify(self, presentation: str, *, now: int = NOW, **options: Any) -> VerifiedPresentation:
        """Verify ``presentation`` against this node's state, as the node would."""
        return verify_presentation(
            presentation,
            trust=self.trust,
            audience=self.audience,
            nonces=self.nonces,
            now=now,
            policy=self.policy,
            **options,
        )


def fixed_nonces(nonce_bytes: bytes = b"\x01" * 16) -> MemoryNonceStore:
    """A real nonce store whose randomness is fixed: every fresh store issues the same nonce.

    Lets a property test rebuild "the same" challenge for each example without
    reusing a store whose nonce was already consumed.
    """
    return MemoryNonceStore(random_bytes=lambda n: nonce_bytes[:n])


def compact_jws(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, signature: bytes = b"") -> str:
    """A hand-built compact JWS, for tokens no honest signer would make (``alg: none``, HMAC, ...)."""
    body = payload if isinstance(payload, bytes) else canonical_json(payload)
    return ".".join((b64url_encode(canonical_json(header)), b64url_encode(body), b64url_encode(signature)))


@contextmanager
def refused(reason: Reason) -> Iterator[pytest.ExceptionInfo[VerificationError]]:
    """Expect a refusal for exactly ``reason``; any other exception fails the test as it is."""
    with pytest.raises(VerificationError) as excinfo:
        yield excinfo
    assert excinfo.value.reason is reason, (
        f"refused for {excinfo.value.reason}, not {reason}: {excinfo.value}"
    )


@functools.cache
def zlib_bomb(inflated_bytes: int = 256 << 20) -> bytes:
    """ZLIB data of ``inflated_bytes`` zero bytes: about a thousandth of that compressed."""
    compressor = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(inflated_bytes >> 20)]
    return b"".join([*parts, compressor.flush()])
