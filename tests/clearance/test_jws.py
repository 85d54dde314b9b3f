"""The lean JWS layer: compact and general JSON serializations, EdDSA and ES256 only."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import Reason
from clearance.jws import (
    MAX_TOKEN_BYTES,
    add_signature,
    decode_compact,
    decode_general,
    encode_compact,
    sign_general,
    verify_compact,
)
from clearance.keys import SigningKey
from tests.factories import compact_jws, refused

PAYLOAD = {"iss": "https://registry.jp.example", "iat": 1_790_000_000}


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_compact_jws_round_trips_and_verifies(alg: str) -> None:
    key = SigningKey.generate(alg)  # type: ignore[arg-type]
    token = encode_compact({"typ": "example+jwt", "kid": key.kid}, PAYLOAD, key)
    jws = decode_compact(token, typ="example+jwt")
    assert jws.header == {"alg": alg, "typ": "example+jwt", "kid": key.kid}
    assert jws.payload == PAYLOAD
    assert jws.kid == key.kid
    assert jws.typ == "example+jwt"
    assert jws.raw == token
    verify_compact(jws, key.public)


def test_alg_comes_from_the_key_not_the_caller() -> None:
    key = SigningKey.generate()
    token = encode_compact({"alg": "none"}, PAYLOAD, key)
    assert decode_compact(token).header["alg"] == "EdDSA"


def test_alg_none_is_refused_before_any_key_is_looked_at() -> None:
    with refused(Reason.ALGORITHM_NOT_ALLOWED):
        decode_compact(compact_jws({"alg": "none"}, PAYLOAD))


def test_hs256_signed_with_the_public_key_as_secret_is_refused() -> None:
    """The classic key-confusion attack: the verifier's own public key used as an HMAC secret."""
    key = SigningKey.generate()
    header = b64url_encode(canonical_json({"alg": "HS256", "kid": key.kid}))
    body = b64url_encode(canonical_json(PAYLOAD))
    for secret in (key.public.to_pem(), key.public.jwk["x"].encode()):
        mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        with refused(Reason.ALGORITHM_NOT_ALLOWED):
            decode_compact(f"{header}.{body}.{b64url_encode(mac)}")


@pytest.mark.parametrize("alg", ["RS256", "ES384", "PS256", "EdDSA ", "eddsa", "ed25519", "Ed448", None, 7])
def test_algorithms_outside_the_allow_list_are_refused(alg: object) -> None:
    with refused(Reason.ALGORITHM_NOT_ALLOWED):
        decode_compact(compact_jws({"alg": alg}, PAYLOAD, b"sig"))


def test_the_fully_specified_name_ed25519_is_accepted_as_eddsa() -> None:
    """RFC 9864: ``Ed25519`` names exactly what ``EdDSA`` with an Ed25519 key names."""
    key = SigningKey.generate()
    token = encode_compact({}, PAYLOAD, key)
    body = token.split(".")[1]
    renamed_header = b64url_encode(canonical_json({"alg": "Ed25519"}))
    renamed_input = f"{renamed_header}.{body}"
    renamed = f"{renamed_input}.{b64url_encode(key.sign(renamed_input.encode()))}"
    verify_compact(decode_compact(renamed), key.public)
    with refused(Reason.ALGORITHM_NOT_ALLOWED):  # and it names no other key type
        verify_compact(decode_compact(renamed), SigningKey.generate("ES256").public)


def test_a_header_alg_that_does_not_match_the_key_is_refused() -> None:
    ed, p256 = SigningKey.generate(), SigningKey.generate("ES256")
    token = encode_compact({}, PAYLOAD, p256)
    with refused(Reason.ALGORITHM_NOT_ALLOWED):
        verify_compact(decode_compact(token), ed.public)


def test_missing_alg_is_refused() -> None:
    with refused(Reason.ALGORITHM_NOT_ALLOWED):
        decode_compact(compact_jws({"typ": "JWT"}, PAYLOAD, b"sig"))


def test_critical_header_parameters_are_refused() -> None:
    with refused(Reason.MALFORMED):
        decode_compact(compact_jws({"alg": "EdDSA", "crit": ["exp"], "exp": 1}, PAYLOAD, b"sig"))


def test_a_tampered_payload_does_not_verify() -> None:
    key = SigningKey.generate()
    header, _, signature = encode_compact({}, PAYLOAD, key).split(".")
    forged = f"{header}.{b64url_encode(canonical_json({**PAYLOAD, 'iat': 1}))}.{signature}"
    with refused(Reason.BAD_SIGNATURE):
        verify_compact(decode_compact(forged), key.public)


def test_a_signature_by_another_key_does_not_verify() -> None:
    token = encode_compact({}, PAYLOAD, SigningKey.generate())
    with refused(Reason.BAD_SIGNATURE):
        verify_compact(decode_compact(token), SigningKey.generate().public)


def test_wrong_typ_is_refused() -> None:
    token = encode_compact({"typ": "kb+jwt"}, PAYLOAD, SigningKey.generate())
    with refused(Reason.WRONG_TYPE):
        decode_compact(token, typ="statuslist+jwt")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("a.b", id="two-parts"),
        pytest.param("a.b.c.d", id="four-parts"),
        pytest.param("", id="empty"),
        pytest.param(compact_jws({"alg": "EdDSA"}, b"not json", b"s"), id="payload-not-json"),
        pytest.param(compact_jws({"alg": "EdDSA"}, b"[1, 2]", b"s"), id="payload-not-an-object"),
        pytest.param(compact_jws({"alg": "EdDSA"}, b'{"a":"\xff"}', b"s"), id="payload-not-utf8"),
        pytest.param("eyJhbGciOiJFZERTQSJ9.e30.AA==", id="padded-signature"),
        pytest.param("!!!.e30.AA", id="header-not-base64url"),
        pytest.param(b64url_encode(b"not json") + ".e30.AA", id="header-not-json"),
    ],
)
def test_structurally_broken_tokens_are_malformed(token: str) -> None:
    with refused(Reason.MALFORMED):
        decode_compact(token)


def test_a_claim_given_twice_is_refused() -> None:
    """Two parsers could each pick a different one: RFC 7515 section 5.2 lets us refuse."""
    with refused(Reason.DUPLICATE_MEMBER):
        decode_compact(compact_jws({"alg": "EdDSA"}, b'{"aud":"a","aud":"b"}', b"s"))


def test_a_token_that_is_not_text_is_malformed() -> None:
    with refused(Reason.MALFORMED):
        decode_compact(b"a.b.c")  # type: ignore[arg-type]


def test_oversized_token_is_refused_before_parsing() -> None:
    with refused(Reason.TOO_LARGE):
        decode_compact("a" * (MAX_TOKEN_BYTES + 1))
    with refused(Reason.TOO_LARGE):
        decode_compact(encode_compact({}, {"pad": "x" * 200}, SigningKey.generate()), max_bytes=100)


def test_oversized_header_is_refused() -> None:
    with refused(Reason.TOO_LARGE):
        decode_compact(compact_jws({"alg": "EdDSA", "pad": "x" * 5000}, PAYLOAD, b"s"))


def test_deeply_nested_payload_is_refused() -> None:
    nested = b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with refused(Reason.TOO_DEEP):
        decode_compact(compact_jws({"alg": "EdDSA"}, nested, b"s"))


# -- general JSON serialization ------------------------------------------------------


def test_general_jws_carries_one_payload_signed_by_each_key() -> None:
    a, b = SigningKey.generate(), SigningKey.generate("ES256")
    doc = sign_general(PAYLOAD, [(a, {"typ": "example+jws"}), (b, {"typ": "example+jws"})])
    parsed = decode_general(doc.to_json(), typ="example+jws")
    assert parsed.payload == PAYLOAD
    assert [s.kid for s in parsed.signatures] == [a.kid, b.kid]
    assert parsed.signed_by(a.public).header["alg"] == "EdDSA"
    assert parsed.signed_by(b.public).header["alg"] == "ES256"


def test_general_jws_without_a_signature_by_a_key_names_that_key_unknown() -> None:
    doc = sign_general(PAYLOAD, [(SigningKey.generate(), {})])
    with refused(Reason.UNKNOWN_KEY):
        doc.signed_by(SigningKey.generate().public)


def test_general_jws_with_a_tampered_payload_does_not_verify() -> None:
    key = SigningKey.generate()
    obj = sign_general(PAYLOAD, [(key, {})]).to_json()
    obj["payload"] = b64url_encode(canonical_json({**PAYLOAD, "iat": 0}))
    with refused(Reason.BAD_SIGNATURE):
        decode_general(obj).signed_by(key.public)


def test_general_jws_signature_whose_kid_names_another_key_does_not_verify() -> None:
    """A signature by key A relabelled with B's kid must not pass as B's."""
    a, b = SigningKey.generate(), SigningKey.generate()
    signature_by_a = sign_general(PAYLOAD, [(a, {})]).to_json()["signatures"][0]["signature"]
    relabelled = b64url_encode(canonical_json({"alg": "EdDSA", "kid": b.kid}))
    obj = {
        "payload": b64url_encode(canonical_json(PAYLOAD)),
        "signatures": [{"protected": relabelled, "signature": signature_by_a}],
    }
    with refused(Reason.BAD_SIGNATURE):
        decode_general(obj).signed_by(b.public)


def test_adding_a_signature_by_the_same_key_replaces_it() -> None:
    key = SigningKey.generate()
    doc = add_signature(sign_general(PAYLOAD, [(key, {})]), key, {})
    assert len(doc.signatures) == 1


def test_general_jws_with_alg_none_signature_is_refused() -> None:
    obj = sign_general(PAYLOAD, [(SigningKey.generate(), {})]).to_json()
    obj["signatures"].append(
        {"protected": b64url_encode(canonical_json({"alg": "none", "kid": "x"})), "signature": ""}
    )
    with refused(Reason.ALGORITHM_NOT_ALLOWED):
        decode_general(obj)


def test_general_jws_with_wrong_typ_is_refused() -> None:
    obj = sign_general(PAYLOAD, [(SigningKey.generate(), {"typ": "other"})]).to_json()
    with refused(Reason.WRONG_TYPE):
        decode_general(obj, typ="example+jws")


def _with_signatures(signatures: object) -> dict[str, object]:
    return {"payload": b64url_encode(canonical_json(PAYLOAD)), "signatures": signatures}


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param("a string", id="not-an-object"),
        pytest.param({"signatures": []}, id="no-payload"),
        pytest.param(_with_signatures([]), id="no-signature"),
        pytest.param(_with_signatures("x"), id="signatures-not-a-list"),
        pytest.param(_with_signatures(["x"]), id="signature-not-an-object"),
        pytest.param(
            _with_signatures([{"protected": "e30", "signature": "AA", "header": {"alg": "EdDSA"}}]),
            id="unprotected-header",
        ),
        pytest.param(_with_signatures([{"protected": "e30", "signature": "AA", "x": 1}]), id="extra-member"),
        pytest.param(
            _with_signatures([{"protected": b64url_encode(b'{"alg":"EdDSA"}'), "signature": "AA"}]),
            id="no-kid",
        ),
        pytest.param(
            _with_signatures(
                [{"protected": b64url_encode(b'{"alg":"EdDSA","kid":"k"}'), "signature": "AA"}] * 2
            ),
            id="same-kid-twice",
        ),
        pytest.param(
            _with_signatures(
                [
                    {"protected": b64url_encode(b'{"alg":"EdDSA","kid":"%d"}' % i), "signature": "AA"}
                    for i in range(9)
                ]
            ),
            id="too-many-signatures",
        ),
        pytest.param(
            {"payload": "!!", "signatures": [{"protected": "e30", "signature": "AA"}]}, id="bad-payload"
        ),
    ],
)
def test_general_jws_of_the_wrong_shape_is_malformed(obj: object) -> None:
    with refused(Reason.MALFORMED):
        decode_general(obj)
