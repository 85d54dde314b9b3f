"""Interoperability with independent implementations of the same standards.

* ``sd_jwt`` 0.10.4, the OpenWallet Foundation reference implementation of
  SD-JWT (RFC 9901), built on jwcrypto;
* ``jwcrypto`` for JWS (RFC 7515), EdDSA (RFC 8037), ES256 (RFC 7518) and
  JWK thumbprints (RFC 7638);
* ``token_status_list`` for the Token Status List (draft-ietf-oauth-status-list).

Each direction is shown: what we make, they accept; what they make, we accept.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS, InvalidJWSSignature
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier
from token_status_list import BitArray, IssuerStatusList

from clearance.bundle import TrustBundle
from clearance.encoding import b64url_decode, b64url_encode, canonical_json
from clearance.errors import Reason
from clearance.jws import decode_compact, decode_general, encode_compact, verify_compact
from clearance.keys import PublicKey, SigningKey, jwk_thumbprint
from clearance.sdjwt import resolve_claims, split
from clearance.statuslist import ALLOWED_BITS, STATUS_LIST_TYP, StatusList, verify_status_list_token
from clearance.verify import verify_presentation
from tests.factories import NOW, Holder, RegistryWorld, Verifier, present_credential, refused


def jwcrypto_key(key: SigningKey | PublicKey) -> JWK:
    """The same key as a jwcrypto JWK (private when given a SigningKey)."""
    if isinstance(key, SigningKey):
        return JWK(**key.private_jwk())
    return JWK(**key.jwk)


def claims_without_sd(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in ("_sd", "_sd_alg")}


# -- SD-JWT: our credentials and presentations, the reference verifier -------------------------------


def reference_verifier(presentation: str, bundle: TrustBundle, *, nonce: str) -> SDJWTVerifier:
    """The reference verifier, finding the issuer key the way our node does: by kid, in the bundle."""

    def issuer_key(issuer: str, header: dict[str, Any]) -> JWK:
        assert issuer == bundle.issuer
        return jwcrypto_key(bundle.issuing_key(header["kid"]).key)

    return SDJWTVerifier(presentation, issuer_key, expected_aud="node-a", expected_nonce=nonce)


def test_reference_verifier_accepts_our_credential_and_key_bound_presentation() -> None:
    """Its key-binding check is fixed to ES256, so the holder key here is P-256; the issuer signs EdDSA."""
    world = RegistryWorld.create()
    node = Verifier.synced(world)
    holder = Holder(SigningKey.generate("ES256"))
    credential, _ = world.issue(holder)
    nonce = node.challenge()
    presentation = present_credential(credential, holder, nonce=nonce, disclose=("given_name", "birthdate"))

    theirs = reference_verifier(
        presentation, node.trust.require_home(NOW), nonce=nonce
    ).get_verified_payload()
    ours = node.verify(presentation)

    assert theirs["given_name"] == "Hanako"
    assert theirs["birthdate"] == "1988-04-01"
    assert "family_name" not in theirs
    assert theirs["clearance"] == ours.credential.clearance.to_json()
    assert theirs["cnf"]["jwk"] == {k: v for k, v in holder.key.public.jwk.items() if k != "kid"}
    assert {k: theirs[k] for k in ours.disclosed} == ours.disclosed


def test_reference_verifier_checks_key_binding_only_with_es256() -> None:
    """A limitation of sd-jwt 0.10.4, not of the standard: ``_verify_key_binding_jwt`` passes
    ``alg=DEFAULT_SIGNING_ALG`` ("ES256") to jwcrypto, so an Ed25519 holder's KB-JWT is refused
    by it although RFC 9901 section 4.3 lets the KB-JWT use any algorithm fitting cnf.jwk.
    Our verifier accepts both (see the tests of our verifier with the reference holder)."""
    world = RegistryWorld.create()
    node = Verifier.synced(world)
    credential, holder = world.issue()  # Ed25519 holder key
    nonce = node.challenge()
    presentation = present_credential(credential, holder, nonce=nonce)
    with pytest.raises(InvalidJWSSignature, match='requested "ES256", found "EdDSA"'):
        reference_verifier(presentation, node.trust.require_home(NOW), nonce=nonce)
    node.verify(presentation)


def test_reference_verifier_refuses_our_presentation_for_another_nonce() -> None:
    world = RegistryWorld.create()
    node = Verifier.synced(world)
    holder = Holder(SigningKey.generate("ES256"))
    credential, _ = world.issue(holder)
    presentation = present_credential(credential, holder, nonce=node.challenge())
    with pytest.raises(ValueError, match="nonce"):
        reference_verifier(presentation, node.trust.require_home(NOW), nonce="another")


def test_reference_verifier_accepts_our_facility_credential_with_every_disclosure() -> None:
    world = RegistryWorld.create()
    node = Verifier.synced(world)
    node_key = Holder(SigningKey.generate("ES256"))
    nonce = node.challenge()
    presentation = present_credential(world.facility(node_key.key, org_id="org-3"), node_key, nonce=nonce)
    payload = reference_verifier(
        presentation, node.trust.require_home(NOW), nonce=nonce
    ).get_verified_payload()
    assert payload["organization"]["id"] == "org-3"


# -- SD-JWT: the reference holder presenting our credential, our verifier ---------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_our_verifier_accepts_a_presentation_made_by_the_reference_holder(alg: str) -> None:
    """The reference holder stamps the KB-JWT ``iat`` from the wall clock and cannot be told
    otherwise, so this one test builds its registry at the wall clock and verifies at that ``iat``."""
    started = int(time.time())
    world = RegistryWorld.create(now=started)
    node = Verifier.synced(world, now=started)
    holder = Holder(SigningKey.generate(alg))  # type: ignore[arg-type]
    credential, _ = world.issue(holder)
    nonce = node.challenge(started)

    reference = SDJWTHolder(credential)
    reference.create_presentation(
        {"given_name": True, "employer": True},
        nonce=nonce,
        aud="node-a",
        holder_key=jwcrypto_key(holder.key),
        sign_alg=alg,
    )
    presentation = reference.sd_jwt_presentation
    kb_issued_at = decode_compact(split(presentation).key_binding or "").payload["iat"]

    verified = verify_presentation(
        presentation,
        trust=node.trust,
        audience="node-a",
        nonces=node.nonces,
        now=kb_issued_at,
        policy=node.policy,
    )
    assert verified.disclosed == {"given_name": "Hanako", "employer": "Example KK"}
    assert verified.key_binding.nonce == nonce


# -- SD-JWT: the reference issuer's structures, our resolver --------------------------------------------


def test_our_resolver_rebuilds_the_reference_issuers_nested_and_array_disclosures() -> None:
    issuer_key = SigningKey.generate()
    claims = {
        "iss": "https://issuer.example",
        SDObj("given_name"): "John",
        "address": {SDObj("street_address"): "123 Main St", "country": "US"},
        "nationalities": [SDObj("US"), "DE"],
        SDObj("employment"): {SDObj("employer"): "Example Inc", "since": 2020},
    }
    issued = SDJWTIssuer(
        claims, jwcrypto_key(issuer_key), sign_alg="EdDSA", add_decoy_claims=True
    ).sd_jwt_issuance
    parts = split(issued)
    jws = decode_compact(parts.jwt, typ="example+sd-jwt")
    verify_compact(jws, issuer_key.public)

    ours = resolve_claims(jws.payload, parts.disclosures, payload_json=jws.payload_json)
    theirs = SDJWTVerifier(
        issued, lambda issuer, header: jwcrypto_key(issuer_key.public)
    ).get_verified_payload()
    assert (
        ours
        == claims_without_sd(theirs)
        == {
            "iss": "https://issuer.example",
            "given_name": "John",
            "address": {"street_address": "123 Main St", "country": "US"},
            "nationalities": ["US", "DE"],
            "employment": {"employer": "Example Inc", "since": 2020},
        }
    )
    # Fewer disclosures: both leave out the same claims.
    kept = [d for d in parts.disclosures if "given_name" in b64url_decode(d).decode()]
    assert resolve_claims(jws.payload, kept) == {
        "iss": "https://issuer.example",
        "given_name": "John",
        "address": {"country": "US"},
        "nationalities": ["DE"],
    }


# -- JWS: jwcrypto verifies ours ----------------------------------------------------------------------


def jwcrypto_verifies(token: str, key: PublicKey) -> dict[str, Any]:
    jws = JWS()
    jws.deserialize(token)
    jws.verify(jwcrypto_key(key))
    return json.loads(jws.payload)  # type: ignore[no-any-return]


def test_jwcrypto_verifies_our_compact_credential_status_list_and_bundle() -> None:
    world = RegistryWorld.create()
    credential, _ = world.issue()
    assert jwcrypto_verifies(split(credential).jwt, world.issuing.public)["iss"] == world.issuer
    assert jwcrypto_verifies(world.status_token(), world.issuing.public)["sub"] == world.status_uri
    bundle = world.bundle()
    assert jwcrypto_verifies(bundle, world.root.public)["jurisdiction"] == "JP"
    # The bundle names its root in its header: jwcrypto reads that JWK as we do.
    header_jwk = JWS.from_jose_token(bundle).jose_header["jwk"]
    assert JWK(**header_jwk).thumbprint() == world.root.kid


def test_jwcrypto_refuses_our_token_under_another_key() -> None:
    world = RegistryWorld.create()
    with pytest.raises(InvalidJWSSignature):
        jwcrypto_verifies(world.bundle(), world.issuing.public)


def test_jwcrypto_verifies_our_es256_key_binding_jwt() -> None:
    world = RegistryWorld.create()
    holder = Holder(SigningKey.generate("ES256"))
    credential, _ = world.issue(holder)
    presentation = present_credential(credential, holder, nonce="n")
    assert jwcrypto_verifies(split(presentation).key_binding or "", holder.key.public)["nonce"] == "n"


def each_signature_alone(document: dict[str, Any]) -> list[str]:
    """Each signature of a general JSON JWS as its own flattened JWS (RFC 7515 section 7.2.2)."""
    return [
        json.dumps({"payload": document["payload"], "protected": s["protected"], "signature": s["signature"]})
        for s in document["signatures"]
    ]


def test_jwcrypto_verifies_both_signatures_of_our_agreement() -> None:
    jp, us = RegistryWorld.create("JP"), RegistryWorld.create("US")
    document = jp.agree_with(us).to_json()
    by_jp, by_us = each_signature_alone(document)
    assert jwcrypto_verifies(by_jp, jp.root.public)["id"] == "JP-US-1"
    assert jwcrypto_verifies(by_us, us.root.public)["id"] == "JP-US-1"
    with pytest.raises(InvalidJWSSignature):
        jwcrypto_verifies(by_us, jp.root.public)
    # And the general serialization as a whole, as jwcrypto parses it.
    whole = JWS()
    whole.deserialize(json.dumps(document))
    for root in (jp.root, us.root):
        whole.verify(jwcrypto_key(root.public))


def test_jwcrypto_verifies_both_signatures_of_our_root_rotation() -> None:
    world = RegistryWorld.create()
    old = world.root
    document = world.rotate_root().document.to_json()
    by_old, by_new = each_signature_alone(document)
    jwcrypto_verifies(by_old, old.public)
    jwcrypto_verifies(by_new, world.root.public)


# -- JWS: we verify jwcrypto's --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_we_verify_a_compact_jws_signed_by_jwcrypto(alg: str) -> None:
    key = SigningKey.generate(alg)  # type: ignore[arg-type]
    jws = JWS(json.dumps({"iss": "https://elsewhere.example", "iat": NOW}))
    jws.add_signature(jwcrypto_key(key), alg=alg, protected=json.dumps({"alg": alg, "typ": "JWT"}))
    parsed = decode_compact(jws.serialize(compact=True), typ="JWT")
    verify_compact(parsed, key.public)
    assert parsed.payload["iat"] == NOW


def test_we_verify_a_general_json_jws_signed_by_jwcrypto_with_two_keys() -> None:
    a, b = SigningKey.generate(), SigningKey.generate("ES256")
    jws = JWS(json.dumps({"id": "joint"}))
    for key in (a, b):
        jws.add_signature(
            jwcrypto_key(key), alg=key.alg, protected=json.dumps({"alg": key.alg, "kid": key.kid})
        )
    parsed = decode_general(json.loads(jws.serialize()))
    parsed.signed_by(a.public)
    parsed.signed_by(b.public)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_our_thumbprints_equal_jwcryptos_rfc7638_thumbprints(alg: str) -> None:
    key = SigningKey.generate(alg)  # type: ignore[arg-type]
    assert jwcrypto_key(key.public).thumbprint() == key.kid == jwk_thumbprint(key.public.jwk)


def test_keys_generated_by_jwcrypto_read_as_ours() -> None:
    for params in ({"kty": "OKP", "crv": "Ed25519"}, {"kty": "EC", "crv": "P-256"}):
        theirs = JWK.generate(**params)
        ours = PublicKey.from_jwk(theirs.export_public(as_dict=True))
        assert ours.thumbprint == theirs.thumbprint()


# -- Token Status List ------------------------------------------------------------------------------------


def statuses_for(bits: int, size: int) -> dict[int, int]:
    """A spread of indices, each with a status that uses all of its bits at some point."""
    top = (1 << bits) - 1
    return {index: 1 + (index * 7) % top if top > 1 else 1 for index in range(0, size, 13)}


@pytest.mark.parametrize("bits", ALLOWED_BITS)
def test_token_status_list_reads_our_lists(bits: int) -> None:
    size = 4096
    ours = StatusList(bits, size)
    expected = statuses_for(bits, size)
    for index, status in expected.items():
        ours.set(index, status)
    theirs = BitArray.load(ours.encode())
    assert len(theirs) == ours.size
    assert [theirs[i] for i in range(size)] == [ours.get(i) for i in range(size)]
    assert bytes(theirs.lst) == ours.to_bytes()


@pytest.mark.parametrize("bits", ALLOWED_BITS)
def test_we_read_token_status_lists_lists(bits: int) -> None:
    size = 4096
    theirs = BitArray.of_size(bits, size)
    expected = statuses_for(bits, size)
    for index, status in expected.items():
        theirs[index] = status
    ours = StatusList.decode(theirs.dump())
    assert ours.size == len(theirs)
    assert dict(ours.non_zero()) == expected
    assert ours.to_bytes() == bytes(theirs.lst)


def test_both_read_the_drafts_examples_alike() -> None:
    for encoded in ({"bits": 1, "lst": "eNrbuRgAAhcBXQ"}, {"bits": 2, "lst": "eNo76fITAAPfAgc"}):
        ours, theirs = StatusList.decode(encoded), BitArray.load(encoded)
        assert [ours.get(i) for i in range(ours.size)] == [theirs[i] for i in range(len(theirs))]


def token_status_list_payload(key: SigningKey) -> bytes:
    """The signing input token_status_list builds for a Status List Token (header.payload)."""
    issuer_list = IssuerStatusList.new(2, 1024, strategy="linear")
    issuer_list[9] = 1
    issuer_list[10] = 2
    payload: bytes = issuer_list.sign_jwt_payload(
        alg="EdDSA",
        kid=key.kid,
        iss="https://registry.jp.example",
        sub="https://registry.jp.example/statuslists/9",
        iat=NOW,
        exp=NOW + 3600,
        ttl=300,
    )
    return payload


def test_we_verify_a_status_list_token_built_by_token_status_list() -> None:
    key = SigningKey.generate()
    signing_input = token_status_list_payload(key)
    token = signing_input.decode() + "." + b64url_encode(key.sign(signing_input))
    parsed = verify_status_list_token(token, key.public)
    assert parsed.jws.typ == STATUS_LIST_TYP
    assert (parsed.uri, parsed.ttl, parsed.seq) == ("https://registry.jp.example/statuslists/9", 300, 0)
    assert (parsed.status_of(9), parsed.status_of(10), parsed.status_of(11)) == (1, 2, 0)


def test_token_status_lists_own_sign_jwt_writes_the_signature_as_a_python_bytes_repr() -> None:
    """A bug in token-status-list 0.1.0a2.dev1, not in us: ``signed_jwt_token`` formats the
    base64url *bytes* into an f-string, so the third segment reads ``b'...'``. RFC 7515 section
    7.1 wants BASE64URL(signature); we refuse the token as malformed, as any strict JWS parser must."""
    key = SigningKey.generate()
    issuer_list = IssuerStatusList.new(2, 1024, strategy="linear")
    token = issuer_list.sign_jwt(key.sign, alg="EdDSA", kid=key.kid, iss="i", sub="https://x/1", iat=NOW)
    assert token.split(".")[2].startswith("b'")
    with refused(Reason.MALFORMED):
        verify_status_list_token(token, key.public)
    header_and_payload, _, _ = token.rpartition(".")
    assert (
        header_and_payload
        == issuer_list.sign_jwt_payload(
            alg="EdDSA", kid=key.kid, iss="i", sub="https://x/1", iat=NOW
        ).decode()
    )


def test_our_status_list_token_claims_are_the_drafts() -> None:
    world = RegistryWorld.create()
    world.status_list.set(9, 2)
    claims = jwcrypto_verifies(world.status_token(), world.issuing.public)
    assert BitArray.load(claims["status_list"])[9] == 2
    assert {"sub", "iat", "exp", "ttl", "status_list"} <= set(claims)
    assert JWS.from_jose_token(world.status_token()).jose_header["typ"] == STATUS_LIST_TYP


def test_canonical_json_is_what_jwcrypto_signs_over_unchanged() -> None:
    """Sanity: our encoder's payload bytes are exactly what an independent verifier hashes."""
    key = SigningKey.generate()
    token = encode_compact({}, {"b": 1, "a": "é"}, key)
    assert b64url_decode(token.split(".")[1]) == canonical_json({"a": "é", "b": 1})
    assert b64url_encode(canonical_json({"a": "é", "b": 1})) == token.split(".")[1]
