"""Fixtures for the OpenID4VC tests: an issuer and a verifier served over real HTTPS on loopback.

* ``issuer``: a HAIP registry's OpenID4VCI endpoints on a memory backend (time: ``NOW``, moved
  through its clock);
* ``verifier``: a node's OpenID4VP endpoints on a memory backend, trusting a HAIP registry
  (time: the real time, read once, as wallets we did not write check ``exp`` on their clock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from starlette.types import ASGIApp

from clearance.certificates import make_issuer_ca, make_leaf_certificate
from clearance.credentials import ClearanceClaim, StatusReference, issue_personnel_credential
from clearance.keys import PublicKey, SigningKey
from clearance.openid4vc.dcql import query_for_decision
from clearance.openid4vc.issuance import Grant, issuer_app
from clearance.openid4vc.issuance_memory import MemoryIssuanceBackend
from clearance.openid4vc.issuer_metadata import PERSONNEL_CONFIGURATION, IssuerConfig
from clearance.openid4vc.offers import NewOffer, new_offer
from clearance.openid4vc.presentation import (
    StartedPresentation,
    VerifierConfig,
    start_presentation,
    verifier_app,
)
from clearance.openid4vc.presentation_memory import MemoryPresentationBackend
from clearance.tls import TlsFiles
from tests.factories import DAY, NOW, RegistryWorld, Verifier
from tests.https_server import loopback_tls, serve_https


@dataclass
class Clock:
    """The issuer's time, moved by the test."""

    now: int = NOW

    def __call__(self) -> int:
        return self.now


@dataclass
class IssuerWorld:
    """A HAIP registry whose issuer endpoints run at ``base_url``."""

    world: RegistryWorld
    config: IssuerConfig
    backend: MemoryIssuanceBackend
    clock: Clock
    tls: TlsFiles
    base_url: str = ""
    issued_to: list[str] = field(default_factory=list)

    def offer(self, **options: object) -> NewOffer:
        """A new offer for one personnel credential, stored in the backend."""
        made = new_offer(
            credential_issuer=self.config.credential_issuer,
            configuration_id=PERSONNEL_CONFIGURATION,
            subject="assessment-1",
            now=self.clock.now,
            **options,  # type: ignore[arg-type]
        )
        self.backend.add_offer(made.record)
        return made

    def issue(self, grant: Grant, holder: PublicKey, now: int) -> str:
        index, self.world.next_index = self.world.next_index, self.world.next_index + 1
        self.issued_to.append(holder.thumbprint)
        return issue_personnel_credential(
            self.world.issuing,
            issuer=self.world.issuer,
            subject=f"sub-{grant.subject}",
            holder=holder,
            clearance=ClearanceClaim("JP", "SECRET", ("cyber-threat",)),
            status=StatusReference(self.world.status_uri, index),
            issued_at=now,
            expires_at=now + 365 * DAY,
            personal={"given_name": "Hanako", "family_name": "Yamada", "nationalities": ["JP"]},
            x5c=self.world.x5c,
        ).serialize()


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[IssuerWorld]:
    tls = loopback_tls(tmp_path / "tls")
    holder: dict[str, IssuerWorld] = {}

    def make_app(base_url: str) -> ASGIApp:
        world = RegistryWorld.create(haip=True, issuer=base_url)
        config = IssuerConfig(base_url, credential_algs=("ES256",))
        clock = Clock()
        made = IssuerWorld(world, config, MemoryIssuanceBackend(lambda *a: made.issue(*a)), clock, tls)
        holder["world"] = made
        return issuer_app(config, made.backend, nonce_key=b"k" * 32, clock=clock, access_token_ttl=600)

    with serve_https(make_app, tls) as base_url:
        made = holder["world"]
        made.base_url = base_url
        yield made


@pytest.fixture
def wallet_key() -> SigningKey:
    return SigningKey.generate("ES256")


@dataclass
class VerifierWorld:
    """A node's OpenID4VP verifier at ``base_url``, trusting ``registry``; its CA is ``ca_der``."""

    registry: RegistryWorld
    config: VerifierConfig
    backend: MemoryPresentationBackend
    clock: Clock
    tls: TlsFiles
    ca_der: bytes
    base_url: str = ""

    def start(self, *, disclose: tuple[str, ...] = ()) -> StartedPresentation:
        query = query_for_decision([self.registry.issuer], disclose=disclose)
        return start_presentation(
            self.config, self.backend, dcql_query=query, context={"label": "SECRET"}, now=self.clock.now
        )


def verifier_certificate(base_url: str, now: int) -> tuple[SigningKey, bytes, bytes]:
    """A verifier CA, and a request-signing key with a leaf naming ``base_url``'s host."""
    ca = SigningKey.generate("ES256")
    ca_der = make_issuer_ca(
        ca, jurisdiction="JP", issuer="https://node.example", not_before=now - DAY, not_after=now + 365 * DAY
    )
    key = SigningKey.generate("ES256")
    host = urlsplit(base_url).hostname or ""
    leaf = make_leaf_certificate(
        ca,
        ca_der,
        key.public,
        common_name="node verifier",
        names=[x509.DNSName(host)],
        not_before=now - DAY,
        not_after=now + 30 * DAY,
    )
    return key, leaf, ca_der


@pytest.fixture
def verifier(tmp_path: Path) -> Iterator[VerifierWorld]:
    """The verifier world starts at the real time, read once: wallets we did not write check a
    request object's ``exp`` against their own clock. Tests move :attr:`VerifierWorld.clock`."""
    tls = loopback_tls(tmp_path / "verifier-tls")
    holder: dict[str, VerifierWorld] = {}
    now = int(time.time())

    def make_app(base_url: str) -> ASGIApp:
        registry = RegistryWorld.create(haip=True, now=now)
        node = Verifier.synced(registry, now=now)
        key, leaf, ca_der = verifier_certificate(base_url, now)
        config = VerifierConfig(base_url, key, (leaf,))
        clock = Clock(now)
        backend = MemoryPresentationBackend(
            node.trust, lambda started, verified, now: {"decision": "allow", "level": verified.level}
        )
        holder["world"] = VerifierWorld(registry, config, backend, clock, tls, ca_der)
        return verifier_app(config, backend, clock=clock)

    with serve_https(make_app, tls) as base_url:
        made = holder["world"]
        made.base_url = base_url
        yield made
