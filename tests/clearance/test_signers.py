"""Every signing entry point takes any :class:`Signer`, not only a file key.

:class:`CountingSigner` implements the protocol without being a
:class:`SigningKey` (it wraps one, as a token wraps its key), so a function
that still reached for a file key's internals would fail here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clearance.access import parse_access_token, sign_access_token, verify_access_token
from clearance.agreement import Agreement, Party
from clearance.bundle import RootRotation, TrustBundle
from clearance.credentials import (
    ClearanceClaim,
    StatusReference,
    issue_facility_credential,
    issue_personnel_credential,
)
from clearance.jws import decode_compact, encode_compact, sign_general, verify_compact
from clearance.keys import Alg, PublicKey, Signer, SigningKey, write_private_key
from clearance.pkcs11 import Pkcs11Signer, generate_key_pair
from clearance.sdjwt import make_key_binding
from clearance.signers import open_signer
from clearance.statusdelta import parse_status_delta, sign_status_delta
from clearance.statuslist import StatusList, sign_status_list, verify_status_list_token
from clearance.visit import VisitKind, issue_visit_assurance
from cli.softhsm import ScratchToken, SoftHsm
from tests.factories import DAY, NOW


@dataclass
class CountingSigner:
    """A Signer that is not a SigningKey, counting its signatures."""

    key: SigningKey = field(default_factory=SigningKey.generate)
    count: int = 0

    @property
    def alg(self) -> Alg:
        return self.key.alg

    @property
    def kid(self) -> str:
        return self.key.kid

    @property
    def public(self) -> PublicKey:
        return self.key.public

    def sign(self, message: bytes) -> bytes:
        self.count += 1
        return self.key.sign(message)


def check_compact(token: str, signer: CountingSigner) -> None:
    verify_compact(decode_compact(token.split("~")[0]), signer.public)


CLAIM = ClearanceClaim("JP", "SECRET", ("joint-research",))
STATUS = StatusReference("https://registry.jp.example/statuslists/1", 3)

ENTRY_POINTS: dict[str, Callable[[CountingSigner], object]] = {
    "encode_compact": lambda s: check_compact(encode_compact({"typ": "JWT"}, {"a": 1}, s), s),
    "sign_general": lambda s: sign_general({"a": 1}, [(s, {"typ": "x"})]).signed_by(s.public),
    "trust bundle": lambda s: TrustBundle.verify(
        TrustBundle(
            issuer="https://registry.jp.example",
            jurisdiction="JP",
            version=1,
            issued_at=NOW,
            expires_at=NOW + DAY,
            root=s.kid,
            issuing_keys=(),
            levels=("SECRET",),
            categories=(),
            status_lists=(),
        ).sign(s),
        s.public,
    ),
    "root rotation": lambda s: RootRotation.create(
        jurisdiction="JP", version=2, old=s, new=CountingSigner(), issued_at=NOW
    ).document.signed_by(s.public),
    "agreement": lambda s: Agreement.propose(
        s,
        agreement_id="JP-US-1",
        parties=(
            Party("JP", s.public, "https://jp.example"),
            Party("US", SigningKey.generate().public, "https://us.example"),
        ),
        levels=[("SECRET", "SECRET")],
        categories={"JP": [], "US": []},
        issued_at=NOW,
        not_before=NOW,
        expires_at=NOW + DAY,
    ).document.signed_by(s.public),
    "personnel credential": lambda s: check_compact(
        issue_personnel_credential(
            s,
            issuer="https://jp.example",
            subject="p1",
            holder=SigningKey.generate().public,
            clearance=CLAIM,
            status=STATUS,
            issued_at=NOW,
            expires_at=NOW + DAY,
        ).serialize(),
        s,
    ),
    "facility credential": lambda s: check_compact(
        issue_facility_credential(
            s,
            issuer="https://jp.example",
            subject="o1",
            node_key=SigningKey.generate().public,
            organization={"id": "org-1"},
            clearance=CLAIM,
            status=STATUS,
            issued_at=NOW,
            expires_at=NOW + DAY,
        ).serialize(),
        s,
    ),
    "key binding": lambda s: check_compact(
        make_key_binding("jwt~", s, audience="node", nonce="n", issued_at=NOW), s
    ),
    "status list": lambda s: verify_status_list_token(
        sign_status_list(StatusList(2, 16), s, uri="u", issued_at=NOW, ttl=60, expires_at=NOW + 60, seq=1),
        s.public,
    ),
    "status delta": lambda s: verify_compact(
        parse_status_delta(
            sign_status_delta(s, uri="u", issued_at=NOW, expires_at=NOW + 60, base_seq=1, updates=[(1, 1)])
        ).jws,
        s.public,
    ),
    "visit assurance": lambda s: check_compact(
        issue_visit_assurance(
            s,
            issuer="https://jp.example",
            subject="p1",
            holder_thumbprint=s.kid,
            clearance=CLAIM,
            host_jurisdiction="US",
            host_organization="lab-1",
            programme="fusion",
            kind=VisitKind.ONE_TIME,
            issued_at=NOW,
            not_before=NOW,
            expires_at=NOW + DAY,
        ),
        s,
    ),
    "access token": lambda s: verify_access_token(
        parse_access_token(sign_access_token(s, principal="staff-1", audience="registry", now=NOW)),
        s.public,
        audience="registry",
        now=NOW,
    ),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_signing_entry_point_accepts_any_signer(name: str) -> None:
    signer = CountingSigner()

    ENTRY_POINTS[name](signer)

    assert isinstance(signer, Signer)
    assert signer.count >= 1


def test_open_signer_opens_a_key_file_or_a_token_key(
    softhsm: SoftHsm, token: ScratchToken, tmp_path: Path
) -> None:
    file_key = SigningKey.generate()
    write_private_key(tmp_path / "root.pem", file_key)
    uri, public = generate_key_pair(token.key_uri("root"), "EdDSA", softhsm.config)

    assert open_signer(str(tmp_path / "root.pem")).kid == file_key.kid
    opened = open_signer(str(uri), softhsm.config)
    assert isinstance(opened, Pkcs11Signer)
    assert opened.kid == public.thumbprint
