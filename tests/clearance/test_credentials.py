"""Personnel and facility credentials (SD-JWT VC): what is visible, what is disclosable, what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from clearance.credentials import (
    FACILITY_VCT,
    PERSONNEL_VCT,
    SD_JWT_VC_TYP,
    ClearanceClaim,
    CredentialClaims,
    StatusReference,
    issue_personnel_credential,
)
from clearance.credentialtypes import vct_for, vct_integrity
from clearance.errors import Reason
from clearance.jws import decode_compact
from clearance.keys import SigningKey
from clearance.sdjwt import resolve_claims, split
from tests.factories import DAY, NOW, Holder, RegistryWorld, refused


def claims_of(serialized: str, *, disclose_all: bool = True) -> dict[str, Any]:
    parts = split(serialized)
    payload = decode_compact(parts.jwt).payload
    return resolve_claims(payload, parts.disclosures if disclose_all else [])


def test_personnel_credential_header_names_its_type_and_issuing_key() -> None:
    world = RegistryWorld.create()
    credential, _ = world.issue()
    header = decode_compact(split(credential).jwt).header
    assert header == {"alg": "EdDSA", "typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}


def test_personnel_credential_shows_only_what_the_design_makes_visible() -> None:
    world = RegistryWorld.create()
    holder = Holder()
    credential, _ = world.issue(holder, level="TOP_SECRET", index=42)
    visible = claims_of(credential, disclose_all=False)
    assert visible == {
        "iss": world.issuer,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 365 * DAY,
        "vct": vct_for(PERSONNEL_VCT, world.issuer),
        "vct#integrity": vct_integrity(PERSONNEL_VCT, world.issuer),
        "sub": "sub-42",
        "cnf": {"jwk": {k: v for k, v in holder.key.public.jwk.items() if k != "kid"}},
        "status": {"status_list": {"idx": 42, "uri": world.status_uri}},
        "clearance": {
            "jurisdiction": "JP",
            "level": "TOP_SECRET",
            "categories": ["cyber-threat", "joint-research"],
        },
    }


def test_personal_claims_are_readable_only_through_their_disclosures() -> None:
    credential, _ = RegistryWorld.create().issue()
    jwt_text = split(credential).jwt
    for secret in ("Hanako", "Yamada", "1988-04-01", "Example KK"):
        assert secret not in str(decode_compact(jwt_text).payload)
    parsed = CredentialClaims.from_payload(claims_of(credential))
    assert parsed.disclosed == {
        "given_name": "Hanako",
        "family_name": "Yamada",
        "birthdate": "1988-04-01",
        "nationalities": ["JP"],
        "employer": "Example KK",
    }


def test_credential_carries_decoy_digests_so_the_count_of_hidden_claims_leaks_nothing() -> None:
    credential, _ = RegistryWorld.create().issue(personal={"given_name": "Hanako"})
    assert len(decode_compact(split(credential).jwt).payload["_sd"]) > 1


def test_empty_personal_claims_are_left_out() -> None:
    credential, _ = RegistryWorld.create().issue(personal={"given_name": "Hanako", "employer": ""})
    assert CredentialClaims.from_payload(claims_of(credential)).disclosed == {"given_name": "Hanako"}


def test_personal_claims_outside_the_allowed_set_are_refused() -> None:
    with refused(Reason.MALFORMED):
        RegistryWorld.create().issue(personal={"national_id": "123456789012"})


def issue_with(**overrides: Any) -> Any:
    fields: dict[str, Any] = dict(
        issuer="https://registry.jp.example",
        subject="sub-1",
        holder=SigningKey.generate().public,
        clearance=ClearanceClaim("JP", "SECRET", ("cyber-threat",)),
        status=StatusReference("https://registry.jp.example/statuslists/1", 1),
        issued_at=NOW,
        expires_at=NOW + DAY,
    )
    fields.update(overrides)
    return issue_personnel_credential(SigningKey.generate(), **fields)


def test_a_credential_that_would_expire_before_it_is_valid_is_refused() -> None:
    with refused(Reason.MALFORMED):
        issue_with(expires_at=NOW)
    with refused(Reason.MALFORMED):
        issue_with(not_before=NOW + 2 * DAY)


def test_facility_credential_names_its_organization_and_binds_the_node_key() -> None:
    world = RegistryWorld.create()
    node_key = SigningKey.generate()
    parsed = CredentialClaims.from_payload(claims_of(world.facility(node_key, org_id="org-7")))
    assert parsed.kind == FACILITY_VCT
    assert parsed.vct == f"{world.issuer}/types/facility/v1"
    assert parsed.organization == {"id": "org-7", "name": "Example KK"}
    assert parsed.holder_key == node_key.public


@pytest.mark.parametrize(
    "clearance",
    [
        pytest.param(("jp", "SECRET", ("a",)), id="lower-case-jurisdiction"),
        pytest.param(("JPN", "SECRET", ("a",)), id="three-letter-jurisdiction"),
        pytest.param(("JP", "", ("a",)), id="empty-level"),
        pytest.param(("JP", "SECRET LEVEL", ("a",)), id="level-with-space"),
        pytest.param(("JP", "SECRET", ()), id="no-category"),
        pytest.param(("JP", "SECRET", ("a", "a")), id="repeated-category"),
        pytest.param(("JP", "SECRET", ("x" * 65,)), id="category-too-long"),
    ],
)
def test_clearance_claim_validates_in_its_constructor(clearance: tuple[Any, ...]) -> None:
    with refused(Reason.MALFORMED):
        ClearanceClaim(*clearance)


def test_status_reference_validates_in_its_constructor() -> None:
    with refused(Reason.MALFORMED):
        StatusReference("", 1)
    with refused(Reason.MALFORMED):
        StatusReference("https://x", -1)
    with refused(Reason.MALFORMED):
        StatusReference("https://x", True)


def valid_claims() -> dict[str, Any]:
    return claims_of(RegistryWorld.create().issue()[0])


@pytest.mark.parametrize("claim", ["iss", "iat", "nbf", "exp", "vct", "sub", "cnf", "status", "clearance"])
def test_a_credential_without_a_required_claim_is_refused(claim: str) -> None:
    claims = valid_claims()
    del claims[claim]
    with refused(Reason.MISSING_CLAIM):
        CredentialClaims.from_payload(claims)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iat", "yesterday"),
        ("exp", 1.5),
        ("nbf", True),
        ("nbf", NOW + 400 * DAY),
        ("vct", "urn:other"),
        ("sub", ""),
        ("iss", 7),
        ("cnf", {"kid": "x"}),
        ("cnf", {"jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
        ("status", {"status_list": {"idx": -1, "uri": "x"}}),
        ("status", {"idx": 1}),
        ("clearance", {"jurisdiction": "JP", "level": "SECRET"}),
        ("clearance", {"jurisdiction": "JP", "level": "SECRET", "categories": "cyber-threat"}),
        ("clearance", {"jurisdiction": "JP", "level": "SECRET", "categories": [{}]}),
        ("organization", {"id": "org-1"}),
    ],
)
def test_a_credential_with_an_invalid_claim_is_refused(claim: str, value: Any) -> None:
    claims = valid_claims()
    claims[claim] = value
    with refused(Reason.INVALID_CLAIM):
        CredentialClaims.from_payload(claims)


def test_a_facility_credential_without_an_organization_is_refused() -> None:
    claims = claims_of(RegistryWorld.create().facility(SigningKey.generate()))
    del claims["organization"]
    with refused(Reason.INVALID_CLAIM):
        CredentialClaims.from_payload(claims)
