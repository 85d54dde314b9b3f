"""Factories for trust material: a registry's keys, bundle, status list and credentials.

Everything is built through the public API of :mod:`clearance`, with time
passed in, so tests read like the behaviour they protect::

    world = RegistryWorld.create("JP", now=NOW)
    credential = world.issue(level="SECRET")
    presentation = world.present(credential, nonce=verifier.nonces.issue(NOW))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearance.agreement import Agreement, Party
from clearance.bundle import IssuingKey, StatusListLocation, TrustBundle
from clearance.credentials import (
    ClearanceClaim,
    StatusReference,
    issue_facility_credential,
    issue_personnel_credential,
)
from clearance.keys import SigningKey
from clearance.sdjwt import present
from clearance.statuslist import StatusList, sign_status_list
from clearance.trust import TrustStore
from clearance.verify import MemoryNonceStore, StalenessPolicy

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

    @classmethod
    def create(cls, jurisdiction: str = "JP", *, now: int = NOW, size: int = 131_072) -> RegistryWorld:
        lower = jurisdiction.lower()
        return cls(
            jurisdiction=jurisdiction,
            now=now,
            root=SigningKey.generate(),
            issuing=SigningKey.generate(),
            issuer=f"https://registry.{lower}.example",
            status_uri=f"https://registry.{lower}.example/statuslists/1",
            status_list=StatusList(2, size),
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
                "nationality": self.jurisdiction,
                "employer": "Example KK",
            },
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
