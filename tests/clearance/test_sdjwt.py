"""SD-JWT (RFC 9901): disclosures, claim resolution, and key binding."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import MalformedError, Reason
from clearance.jws import decode_compact, encode_compact
from clearance.keys import SigningKey
from clearance.sdjwt import (
    MAX_DISCLOSURES,
    MAX_PRESENTATION_BYTES,
    SD_ALG,
    Disclosure,
    digest,
    issue,
    make_key_binding,
    present,
    resolve_claims,
    sd_hash,
    split,
    verify_key_binding,
)
from tests.factories import NOW, compact_jws, refused

# RFC 9901 section 4.2.1 / 4.2.2 / 4.2.3: the specification's own disclosures and digests.
RFC_FAMILY_NAME = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
RFC_FAMILY_NAME_DIGEST = "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"
RFC_ARRAY_ELEMENT = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0"
RFC_ARRAY_ELEMENT_DIGEST = "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"

CLAIMS = {"iss": "https://registry.jp.example", "iat": NOW, "level": "SECRET"}
PERSONAL = {"given_name": "Hanako", "family_name": "Yamada", "birthdate": "1988-04-01"}


def counting_salts() -> Any:
    counter = itertools.count()
    return lambda: f"salt-{next(counter)}"


def issued_with(claims: dict[str, Any] = CLAIMS, personal: dict[str, Any] = PERSONAL, decoys: int = 0) -> Any:
    return issue({"typ": "example+sd-jwt"}, claims, personal, ISSUER, salt=counting_salts(), decoys=decoys)


ISSUER = SigningKey.generate()
HOLDER = SigningKey.generate()


def resolve_both_ways(payload: dict[str, Any], disclosures: list[str]) -> dict[str, Any]:
    """Resolve through the fast path (payload JSON given) and the general walk; they must agree."""
    general = resolve_claims(payload, disclosures)
    fast = resolve_claims(payload, disclosures, payload_json=canonical_json(payload).decode())
    assert fast == general
    return general


both_paths = pytest.mark.parametrize("with_json", [True, False], ids=["fast-path", "general-walk"])


def resolve(payload: dict[str, Any], disclosures: list[str], with_json: bool) -> dict[str, Any]:
    return resolve_claims(
        payload, disclosures, payload_json=canonical_json(payload).decode() if with_json else ""
    )


# -- disclosures ---------------------------------------------------------------------


def test_digest_is_taken_over_the_base64url_text_as_rfc9901_shows() -> None:
    assert digest(RFC_FAMILY_NAME) == RFC_FAMILY_NAME_DIGEST
    assert digest(RFC_ARRAY_ELEMENT) == RFC_ARRAY_ELEMENT_DIGEST


def test_rfc9901_disclosures_decode_to_their_claims() -> None:
    family = Disclosure.parse(RFC_FAMILY_NAME)
    assert (family.salt, family.name, family.value) == ("_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius")
    assert family.digest == RFC_FAMILY_NAME_DIGEST
    element = Disclosure.parse(RFC_ARRAY_ELEMENT)
    assert (element.salt, element.name, element.value) == ("lklxF5jMYlGTPUovMNIvCA", None, "FR")


def test_created_disclosure_parses_back() -> None:
    created = Disclosure.create("employer", {"name": "Example KK"}, "salt")
    assert Disclosure.parse(created.encoded) == created


@pytest.mark.parametrize(
    "content",
    [
        pytest.param({"salt": "s"}, id="object"),
        pytest.param(["s"], id="one-element"),
        pytest.param(["s", "a", "b", "c"], id="four-elements"),
        pytest.param([1, "name", "v"], id="salt-not-a-string"),
        pytest.param(["s", 1, "v"], id="name-not-a-string"),
        pytest.param(["s", "_sd", []], id="name-_sd"),
        pytest.param(["s", "...", "v"], id="name-ellipsis"),
        pytest.param(["s", "_sd_alg", "md5"], id="name-_sd_alg"),
    ],
)
def test_disclosure_of_the_wrong_shape_is_malformed(content: Any) -> None:
    with refused(Reason.MALFORMED):
        Disclosure.parse(b64url_encode(canonical_json(content)))


def test_disclosure_that_is_not_base64url_is_malformed() -> None:
    with refused(Reason.MALFORMED):
        Disclosure.parse("WyJz=")
    with refused(Reason.MALFORMED):
        digest("é")


# -- issuing and resolving -----------------------------------------------------------


def test_issued_sd_jwt_hides_each_disclosable_claim_behind_a_sorted_digest() -> None:
    issued = issued_with(decoys=3)
    payload = decode_compact(issued.jwt).payload
    assert payload["_sd_alg"] == SD_ALG
    assert payload["_sd"] == sorted(payload["_sd"])
    assert len(payload["_sd"]) == len(PERSONAL) + 3
    assert {d.digest for d in issued.disclosures} <= set(payload["_sd"])
    assert not set(PERSONAL) & set(payload)
    assert issued.serialize() == "~".join([issued.jwt, *(d.encoded for d in issued.disclosures)]) + "~"


def test_resolving_with_every_disclosure_yields_every_claim() -> None:
    issued = issued_with(decoys=2)
    payload = decode_compact(issued.jwt).payload
    assert resolve_both_ways(payload, [d.encoded for d in issued.disclosures]) == {**CLAIMS, **PERSONAL}


def test_resolving_with_no_disclosure_reveals_only_the_visible_claims() -> None:
    payload = decode_compact(issued_with(decoys=2).jwt).payload
    assert resolve_both_ways(payload, []) == CLAIMS


def test_resolving_reveals_exactly_the_disclosed_claims() -> None:
    issued = issued_with()
    chosen = [d.encoded for d in issued.disclosures if d.name == "birthdate"]
    assert resolve_both_ways(decode_compact(issued.jwt).payload, chosen) == {
        **CLAIMS,
        "birthdate": "1988-04-01",
    }


def test_issue_refuses_reserved_or_doubled_claim_names() -> None:
    with refused(Reason.MALFORMED):
        issued_with(claims={**CLAIMS, "_sd": []})
    with refused(Reason.MALFORMED):
        issued_with(personal={"iss": "someone else"})


def test_nested_and_array_disclosures_resolve_recursively() -> None:
    """Structures our issuer does not emit but RFC 9901 allows, as peers may send them."""
    street = Disclosure.create("street", "1-1 Chiyoda", "s1")
    address = Disclosure.create("address", {"_sd": [street.digest], "country": "JP"}, "s2")
    france = Disclosure.create(None, "FR", "s3")
    payload = {
        "iss": "x",
        "_sd": [address.digest],
        "nationalities": [{"...": france.digest}, "DE", {"...": digest("decoy")}],
        "_sd_alg": "sha-256",
    }
    everything = [street.encoded, address.encoded, france.encoded]
    assert resolve_both_ways(payload, everything) == {
        "iss": "x",
        "address": {"street": "1-1 Chiyoda", "country": "JP"},
        "nationalities": ["FR", "DE"],
    }
    assert resolve_both_ways(payload, [address.encoded]) == {
        "iss": "x",
        "address": {"country": "JP"},
        "nationalities": ["DE"],
    }


@both_paths
def test_a_disclosure_matching_no_digest_is_refused(with_json: bool) -> None:
    issued = issued_with()
    stranger = Disclosure.create("given_name", "Mallory", "salt-x")
    with refused(Reason.DISCLOSURE_MISMATCH):
        resolve(decode_compact(issued.jwt).payload, [stranger.encoded], with_json)


@both_paths
def test_a_disclosure_sent_twice_is_refused(with_json: bool) -> None:
    issued = issued_with()
    first = issued.disclosures[0].encoded
    with refused(Reason.DUPLICATE_DISCLOSURE):
        resolve(decode_compact(issued.jwt).payload, [first, first], with_json)


@both_paths
def test_a_digest_the_issuer_listed_twice_is_refused(with_json: bool) -> None:
    d = Disclosure.create("given_name", "Hanako", "s")
    with refused(Reason.DISCLOSURE_MISMATCH):
        resolve({"_sd": [d.digest, d.digest]}, [d.encoded], with_json)


@both_paths
def test_a_disclosure_may_not_overwrite_a_visible_claim(with_json: bool) -> None:
    d = Disclosure.create("iss", "https://evil.example", "s")
    with refused(Reason.DISCLOSURE_MISMATCH):
        resolve({"iss": "https://registry.jp.example", "_sd": [d.digest]}, [d.encoded], with_json)


@both_paths
def test_an_sd_array_holding_something_other_than_digests_is_malformed(with_json: bool) -> None:
    d = Disclosure.create("given_name", "Hanako", "s")
    with refused(Reason.MALFORMED):
        resolve({"_sd": [{}, d.digest]}, [d.encoded], with_json)


@both_paths
def test_an_array_element_disclosure_referenced_from_sd_is_malformed(with_json: bool) -> None:
    d = Disclosure.create(None, "FR", "s")
    with refused(Reason.MALFORMED):
        resolve({"_sd": [d.digest]}, [d.encoded], with_json)


def test_an_object_property_disclosure_inside_an_array_is_malformed() -> None:
    d = Disclosure.create("name", "FR", "s")
    with refused(Reason.MALFORMED):
        resolve_both_ways({"list": [{"...": d.digest}]}, [d.encoded])


def test_an_array_digest_object_with_extra_members_is_malformed() -> None:
    d = Disclosure.create(None, "FR", "s")
    with refused(Reason.MALFORMED):
        resolve_claims({"list": [{"...": d.digest, "x": 1}]}, [d.encoded])


def test_an_unsupported_digest_algorithm_is_malformed() -> None:
    with refused(Reason.MALFORMED):
        resolve_claims({"_sd_alg": "md5", "_sd": []}, [])


def test_disclosures_chained_past_the_recursion_limit_are_refused_not_crashed() -> None:
    """Each disclosure stays within the JSON depth cap, but together they nest ~2000 deep."""
    value: Any = "leaf"
    chain = []
    for n in range(MAX_DISCLOSURES):
        nested = value
        for _ in range(30):
            nested = [nested]
        disclosure = Disclosure.create(None, nested, f"salt-{n}")
        chain.append(disclosure.encoded)
        value = {"...": disclosure.digest}
    with refused(Reason.TOO_DEEP):
        resolve_claims({"list": [value]}, chain)


@both_paths
def test_a_disclosure_that_is_not_ascii_is_malformed(with_json: bool) -> None:
    issued = issued_with()
    with refused(Reason.MALFORMED):
        resolve(decode_compact(issued.jwt).payload, ["WyJzIiwiYSIsImIiXQé"], with_json)


# -- serialization ---------------------------------------------------------------------


def test_split_separates_jwt_disclosures_and_key_binding() -> None:
    parts = split("jwt~d1~d2~kb")
    assert (parts.jwt, parts.disclosures, parts.key_binding) == ("jwt", ["d1", "d2"], "kb")
    assert parts.without_key_binding == "jwt~d1~d2~"
    assert split("jwt~").key_binding is None


@pytest.mark.parametrize(
    ("serialized", "reason"),
    [
        pytest.param("just.a.jwt", Reason.MALFORMED, id="no-tilde"),
        pytest.param("jwt~d1~~kb", Reason.MALFORMED, id="empty-disclosure"),
        pytest.param("jwt~" + "d~" * (MAX_DISCLOSURES + 1), Reason.TOO_LARGE, id="too-many-disclosures"),
        pytest.param("jwt~" + "d" * MAX_PRESENTATION_BYTES + "~", Reason.TOO_LARGE, id="too-large"),
        pytest.param(None, Reason.MALFORMED, id="not-text"),
    ],
)
def test_split_refuses_broken_serializations(serialized: Any, reason: Reason) -> None:
    with refused(reason):
        split(serialized)


def test_present_keeps_only_the_chosen_disclosures_and_binds_them() -> None:
    issued = issued_with()
    presentation = present(
        issued.serialize(), HOLDER, disclose=["given_name"], audience="node-a", nonce="n-1", issued_at=NOW
    )
    parts = split(presentation)
    assert [Disclosure.parse(d).name for d in parts.disclosures] == ["given_name"]
    binding = verify_key_binding(parts, HOLDER.public, audience="node-a")
    assert (binding.audience, binding.nonce, binding.issued_at) == ("node-a", "n-1", NOW)
    kb = decode_compact(parts.key_binding or "")
    assert kb.typ == "kb+jwt"
    assert kb.payload["sd_hash"] == sd_hash(parts.without_key_binding)


def test_present_refuses_a_claim_the_credential_does_not_carry() -> None:
    with pytest.raises(MalformedError, match="nationalities"):
        present(
            issued_with().serialize(),
            HOLDER,
            disclose=["nationalities"],
            audience="a",
            nonce="n",
            issued_at=NOW,
        )


# -- key binding -----------------------------------------------------------------------


def bound(kb: str | None = None, *, disclose: tuple[str, ...] = ()) -> Any:
    presentation = present(
        issued_with().serialize(), HOLDER, disclose=disclose, audience="node-a", nonce="n", issued_at=NOW
    )
    parts = split(presentation)
    if kb is not None:
        parts.key_binding = kb
    return parts


def test_missing_key_binding_is_refused() -> None:
    parts = split(issued_with().serialize())
    with refused(Reason.KEY_BINDING_MISSING):
        verify_key_binding(parts, HOLDER.public, audience="node-a")


def test_key_binding_by_another_key_is_refused() -> None:
    with refused(Reason.KEY_BINDING_INVALID):
        verify_key_binding(bound(), SigningKey.generate().public, audience="node-a")


def test_key_binding_without_the_kb_typ_is_refused() -> None:
    parts = bound()
    claims = decode_compact(parts.key_binding).payload
    with refused(Reason.KEY_BINDING_INVALID):
        verify_key_binding(
            bound(encode_compact({"typ": "JWT"}, claims, HOLDER)), HOLDER.public, audience="node-a"
        )


def test_key_binding_with_alg_none_is_refused() -> None:
    claims = decode_compact(bound().key_binding).payload
    with refused(Reason.ALGORITHM_NOT_ALLOWED):
        verify_key_binding(
            bound(compact_jws({"alg": "none", "typ": "kb+jwt"}, claims)), HOLDER.public, audience="node-a"
        )


def test_key_binding_for_another_audience_is_refused() -> None:
    with refused(Reason.AUDIENCE_MISMATCH):
        verify_key_binding(bound(), HOLDER.public, audience="node-b")


def test_key_binding_over_other_disclosures_is_refused() -> None:
    parts = bound()
    kb_over_something_else = make_key_binding("other~", HOLDER, audience="node-a", nonce="n", issued_at=NOW)
    parts.key_binding = kb_over_something_else
    with refused(Reason.SD_HASH_MISMATCH):
        verify_key_binding(parts, HOLDER.public, audience="node-a")


@pytest.mark.parametrize("missing", ["iat", "nonce", "sd_hash"])
def test_key_binding_lacking_a_claim_is_refused(missing: str) -> None:
    claims = dict(decode_compact(bound().key_binding).payload)
    del claims[missing]
    with refused(Reason.KEY_BINDING_INVALID):
        verify_key_binding(
            bound(encode_compact({"typ": "kb+jwt"}, claims, HOLDER)), HOLDER.public, audience="node-a"
        )


@pytest.mark.parametrize("forged_hash", ["", "é", "\ud800", "x" * 43])
def test_key_binding_with_a_made_up_sd_hash_is_refused(forged_hash: str) -> None:
    """The holder signs the KB-JWT, so anything may stand in its sd_hash; none may crash the check."""
    claims = {**decode_compact(bound().key_binding).payload, "sd_hash": forged_hash}
    signing_input = ".".join(
        [b64url_encode(b'{"alg":"EdDSA","typ":"kb+jwt"}'), b64url_encode(json.dumps(claims).encode("ascii"))]
    )
    kb = signing_input + "." + b64url_encode(HOLDER.sign(signing_input.encode("ascii")))
    with refused(Reason.SD_HASH_MISMATCH):
        verify_key_binding(bound(kb), HOLDER.public, audience="node-a")
