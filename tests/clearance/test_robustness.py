"""Robustness: mutated presentations, tokens, bundles, agreements and status lists.

Property: verifying a mutated input either raises a
:class:`~clearance.errors.ClearanceError` subclass, or succeeds, and then only
because the "mutation" left the input unchanged. Never TypeError, KeyError,
AttributeError, RecursionError, UnicodeError, ... Hypothesis runs derandomized
(a fixed sequence of examples) without an example database, so every run of
the suite tries the same inputs.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.agreement import AGREEMENT_TYP, Agreement
from clearance.bundle import RootRotation, TrustBundle
from clearance.credentials import SD_JWT_VC_TYP
from clearance.encoding import b64url_decode, parse_json
from clearance.errors import ClearanceError
from clearance.jws import encode_compact, sign_general
from clearance.keys import PublicKey, SigningKey
from clearance.sdjwt import Disclosure, make_key_binding, present, split
from clearance.statusdelta import sign_status_delta
from clearance.statuslist import STATUS_LIST_TYP, StatusList, parse_status_list_token
from clearance.trust import TrustStore
from clearance.verify import StalenessPolicy, verify_presentation
from tests.factories import DAY, NOW, Holder, RegistryWorld, fixed_nonces

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SIGNED_GARBAGE = settings(FUZZ, max_examples=300)

BASE64URL = string.ascii_letters + string.digits + "-_"
SEPARATORS = ".~"


# -- the material that gets mutated ------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """A registry, a partner, and a node of the first that trusts both (built once per session)."""

    jp: RegistryWorld
    us: RegistryWorld
    holder: Holder
    credential: str
    presentation: str
    nonce: str
    trust: TrustStore
    home_bundle: str
    status_token: str
    status_delta: str
    agreement: dict[str, Any]
    rotation: dict[str, Any]
    rotation_from: PublicKey

    def fresh_store(self, *, with_status_list: bool = False) -> TrustStore:
        store = TrustStore(self.jp.root.public)
        store.update_bundle(self.home_bundle, NOW)
        if with_status_list:
            store.update_status_list(self.status_token, NOW)
        return store


@functools.cache
def scene() -> Scene:
    jp, us = RegistryWorld.create("JP", size=4096), RegistryWorld.create("US", size=4096)
    agreement = jp.agree_with(us)
    jp.agreements.append(agreement.to_json())
    us.agreements.append(agreement.to_json())
    holder = Holder()
    credential, _ = jp.issue(holder, index=11)
    nonce = fixed_nonces().issue(NOW)
    presentation = present(
        credential, holder.key, disclose=("given_name",), audience="node-a", nonce=nonce, issued_at=NOW
    )
    home_bundle = jp.bundle()
    trust = TrustStore(jp.root.public)
    trust.update_bundle(home_bundle, NOW)
    status_token = jp.status_token()
    trust.update_status_list(status_token, NOW)
    trust.update_foreign_bundle(us.bundle(), NOW)
    trust.update_status_list(us.status_token(), NOW)
    delta = sign_status_delta(
        jp.issuing,
        uri=jp.status_uri,
        issued_at=NOW + 1,
        expires_at=NOW + DAY,
        base_seq=jp.seq,
        updates=[(11, 1)],
    )
    rotation = RootRotation.create(
        jurisdiction="JP", version=2, old=jp.root, new=SigningKey.generate(), issued_at=NOW
    )
    return Scene(
        jp, us, holder, credential, presentation, nonce, trust, home_bundle, status_token, delta,
        agreement.to_json(), rotation.document.to_json(), jp.root.public,
    )  # fmt: skip


# -- mutations ----------------------------------------------------------------------------------


def segments(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run between '.' and '~'."""
    spans, start = [], 0
    for index, char in enumerate(text):
        if char in SEPARATORS:
            spans.append((start, index))
            start = index + 1
    spans.append((start, len(text)))
    return spans


@st.composite
def mutation_of(draw: st.DrawFn, original: str, donors: Sequence[str] = ()) -> str:
    """``original`` with one to three mutations: flips, cuts, inserted '~', swapped segments, raw bytes.

    Each mutation first picks a segment (a run between '.' and '~') and then a place in it,
    so a short disclosure is hit as often as a long payload.
    """
    text = original
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        spans = segments(text)
        start, end = draw(st.sampled_from(spans))
        at = draw(st.integers(start, max(start, end - 1)))
        kind = draw(
            st.sampled_from(
                ["flip", "last-char", "truncate", "tilde", "delete", "bytes", "replace", "swap", "duplicate"]
            )
        )
        if kind == "flip":
            char = draw(st.sampled_from(BASE64URL + SEPARATORS) | st.characters())
            text = text[:at] + char + text[at + 1 :]
        elif kind == "last-char" and end > start:  # the bits a base64url tail may not use
            text = text[: end - 1] + draw(st.sampled_from(BASE64URL)) + text[end:]
        elif kind == "truncate":
            text = text[:at]
        elif kind == "tilde":
            text = text[:at] + "~" + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 64)) :]
        elif kind == "bytes":
            raw = draw(st.binary(min_size=1, max_size=48)).decode("latin-1")
            text = text[:at] + raw + text[at:]
        elif kind == "replace":
            donor_spans = [d[s:e] for d in donors for s, e in segments(d)]
            replacement = draw(
                st.text(alphabet=BASE64URL, max_size=120) | st.sampled_from(donor_spans or [""]) | st.just("")
            )
            text = text[:start] + replacement + text[end:]
        elif kind == "swap":
            other_start, other_end = draw(st.sampled_from(spans))
            text = text[:start] + text[other_start:other_end] + text[end:]
        else:  # duplicate the segment
            text = text[:end] + "~" + text[start:end] + text[end:]
    return text


def accepts_only_the_original(original: Any, candidate: Any, verify: Callable[[Any], object]) -> None:
    """The property: a ClearanceError, or success on an input equal to the original."""
    try:
        verify(candidate)
    except ClearanceError:
        return
    assert candidate == original, f"a mutated input was accepted: {candidate!r}"


# -- presentations ------------------------------------------------------------------------------


def verify_at_node(presentation: str) -> object:
    """Verify as the scene's node, with a fresh challenge equal to the one the holder bound."""
    s = scene()
    nonces = fixed_nonces()
    assert nonces.issue(NOW) == s.nonce
    return verify_presentation(
        presentation, trust=s.trust, audience="node-a", nonces=nonces, now=NOW, policy=StalenessPolicy()
    )


def test_the_unmutated_presentation_verifies() -> None:
    assert verify_at_node(scene().presentation) is not None


@FUZZ
@given(st.data())
def test_mutated_presentations_are_refused(data: st.DataObject) -> None:
    s = scene()
    donors = (s.credential, s.status_token, s.home_bundle, s.us.issue()[0])
    candidate = data.draw(mutation_of(s.presentation, donors))
    # Surrounding white space is stripped before anything is checked, so it changes nothing.
    accepts_only_the_original(s.presentation, candidate.strip(), verify_at_node)


# -- trust material -----------------------------------------------------------------------------


@FUZZ
@given(st.data())
def test_mutated_trust_bundles_are_refused(data: st.DataObject) -> None:
    s = scene()
    candidate = data.draw(mutation_of(s.home_bundle, (s.us.bundle(), s.status_token)))
    accepts_only_the_original(
        s.home_bundle, candidate, lambda token: TrustStore(s.jp.root.public).update_bundle(token, NOW)
    )


@FUZZ
@given(st.data())
def test_mutated_status_list_tokens_are_refused(data: st.DataObject) -> None:
    s = scene()
    candidate = data.draw(mutation_of(s.status_token, (s.home_bundle, s.us.status_token())))
    accepts_only_the_original(
        s.status_token, candidate, lambda token: s.fresh_store().update_status_list(token, NOW)
    )


@FUZZ
@given(st.data())
def test_mutated_status_deltas_are_refused(data: st.DataObject) -> None:
    s = scene()
    candidate = data.draw(mutation_of(s.status_delta, (s.status_token,)))
    accepts_only_the_original(
        s.status_delta,
        candidate,
        lambda token: s.fresh_store(with_status_list=True).apply_status_delta(token, NOW),
    )


def mutated_document(data: st.DataObject, original: dict[str, Any]) -> Any:
    """A general JSON JWS with one member mutated, a signature dropped or doubled, or replaced outright."""
    doc: Any = copy.deepcopy(original)
    kind = data.draw(st.sampled_from(["payload", "protected", "signature", "drop", "double", "replace"]))
    if kind == "payload":
        doc["payload"] = data.draw(mutation_of(doc["payload"]))
    elif kind in ("protected", "signature"):
        entry = data.draw(st.sampled_from(doc["signatures"]))
        entry[kind] = data.draw(mutation_of(entry[kind]))
    elif kind == "drop":
        doc["signatures"].pop(data.draw(st.integers(0, len(doc["signatures"]) - 1)))
    elif kind == "double":
        doc["signatures"].append(copy.deepcopy(data.draw(st.sampled_from(doc["signatures"]))))
    else:
        doc = data.draw(json_values)
    return doc


@FUZZ
@given(st.data())
def test_mutated_agreements_are_refused(data: st.DataObject) -> None:
    s = scene()
    candidate = mutated_document(data, s.agreement)
    accepts_only_the_original(s.agreement, candidate, lambda doc: Agreement.parse(doc).verify(NOW))


@FUZZ
@given(st.data())
def test_mutated_root_rotations_are_refused(data: st.DataObject) -> None:
    s = scene()
    candidate = mutated_document(data, s.rotation)
    accepts_only_the_original(
        s.rotation, candidate, lambda doc: RootRotation.parse(doc).verify_from(s.rotation_from)
    )


@FUZZ
@given(st.data())
def test_mutated_status_lists_decode_or_are_refused(data: st.DataObject) -> None:
    """The list itself is not signed, so any decodable mutation may decode; none may crash."""
    encoded = scene().jp.status_list.encode()
    lst = data.draw(mutation_of(encoded["lst"]))
    bits = data.draw(st.sampled_from([1, 2, 4, 8, 0, 3, -1, "2", None, 2.0]))
    with contextlib.suppress(ClearanceError):
        StatusList.decode({"bits": bits, "lst": lst})


# -- well-signed garbage: a trusted signer's key over claims of any shape -----------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "_sd", "...", "sha-256", "EdDSA", "JP", "SECRET", "https://registry.jp.example"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def damaged(data: st.DataObject, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with one to four values replaced by arbitrary JSON, or removed."""
    result = copy.deepcopy(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        where = paths(result)
        if not where:
            break
        path = data.draw(st.sampled_from(where))
        parent = result
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    return result


def payload_of(token: str) -> dict[str, Any]:
    return parse_json(b64url_decode(token.split(".")[1]))  # type: ignore[no-any-return]


def refused_or_accepted(verify: Callable[[], object]) -> None:
    with contextlib.suppress(ClearanceError):
        verify()


@SIGNED_GARBAGE
@given(st.data())
def test_credentials_with_garbage_claims_signed_by_the_issuer_never_crash_the_verifier(
    data: st.DataObject,
) -> None:
    s = scene()
    parts = split(s.credential)
    claims = damaged(data, payload_of(parts.jwt))
    jwt = encode_compact({"typ": SD_JWT_VC_TYP, "kid": s.jp.issuing.kid}, claims, s.jp.issuing)
    issued = "~".join([jwt, *parts.disclosures]) + "~"
    presentation = present(
        issued, s.holder.key, disclose=("given_name",), audience="node-a", nonce=s.nonce, issued_at=NOW
    )
    refused_or_accepted(lambda: verify_at_node(presentation))


disclosure_names = (
    st.none() | st.sampled_from(["given_name", "iss", "_sd", "...", "cnf", "x"]) | st.text(max_size=6)
)


@SIGNED_GARBAGE
@given(st.data())
def test_disclosures_of_any_shape_whose_digests_the_issuer_signed_never_crash_the_verifier(
    data: st.DataObject,
) -> None:
    """Disclosures nest: a disclosed value may hold digests of further disclosures, in objects
    (``_sd``) or arrays (``{"...": digest}``), at any place the issuer chose."""
    s = scene()
    payload = payload_of(split(s.credential).jwt)
    disclosures: list[Disclosure] = []
    for n in range(data.draw(st.integers(1, 6))):
        value = data.draw(json_values)
        nested: bool = data.draw(st.booleans())
        if disclosures and nested:  # refer to an earlier disclosure from inside this one
            inner = data.draw(st.sampled_from(disclosures))
            value = [{"...": inner.digest}] if inner.name is None else {"_sd": [inner.digest], "v": value}
        disclosures.append(Disclosure.create(data.draw(disclosure_names), value, f"salt-{n}"))
    top = [d for d in disclosures if data.draw(st.booleans())] or disclosures[-1:]
    payload["_sd"] = sorted({*payload["_sd"], *(d.digest for d in top if d.name is not None)})
    payload["listed"] = [{"...": d.digest} for d in top if d.name is None]
    jwt = encode_compact({"typ": SD_JWT_VC_TYP, "kid": s.jp.issuing.kid}, payload, s.jp.issuing)
    presented = data.draw(st.lists(st.sampled_from(disclosures), max_size=8))
    without_kb = "~".join([jwt, *(d.encoded for d in presented)]) + "~"
    kb = make_key_binding(without_kb, s.holder.key, audience="node-a", nonce=s.nonce, issued_at=NOW)
    refused_or_accepted(lambda: verify_at_node(without_kb + kb))


@SIGNED_GARBAGE
@given(st.data())
def test_key_bindings_with_garbage_claims_signed_by_the_holder_never_crash_the_verifier(
    data: st.DataObject,
) -> None:
    s = scene()
    parts = split(s.presentation)
    claims = damaged(data, payload_of(parts.key_binding or ""))
    kb = encode_compact({"typ": "kb+jwt"}, claims, s.holder.key)
    refused_or_accepted(lambda: verify_at_node(parts.without_key_binding + kb))


@SIGNED_GARBAGE
@given(st.data())
def test_bundles_with_garbage_fields_signed_by_the_root_never_crash_the_store(data: st.DataObject) -> None:
    s = scene()
    fields = damaged(data, payload_of(s.home_bundle))
    header = {"typ": "clearance-bundle+jwt", "kid": s.jp.root.kid, "jwk": s.jp.root.public.jwk}
    token = encode_compact(header, fields, s.jp.root)
    refused_or_accepted(lambda: TrustStore(s.jp.root.public).update_bundle(token, NOW))


@SIGNED_GARBAGE
@given(st.data())
def test_status_lists_with_garbage_claims_signed_by_the_issuer_never_crash_the_store(
    data: st.DataObject,
) -> None:
    s = scene()
    claims = damaged(data, payload_of(s.status_token))
    token = encode_compact({"typ": STATUS_LIST_TYP, "kid": s.jp.issuing.kid}, claims, s.jp.issuing)
    refused_or_accepted(lambda: s.fresh_store().update_status_list(token, NOW))


@SIGNED_GARBAGE
@given(st.data())
def test_agreements_with_garbage_terms_signed_by_both_roots_never_crash_the_store(
    data: st.DataObject,
) -> None:
    s = scene()
    terms = damaged(data, parse_json(b64url_decode(s.agreement["payload"])))
    signers = [(s.jp.root, {"typ": AGREEMENT_TYP}), (s.us.root, {"typ": AGREEMENT_TYP})]
    document = sign_general(terms, signers).to_json()
    fields = payload_of(s.home_bundle)
    fields["agreements"] = [document]
    fields["version"] = 2
    token = TrustBundle.from_payload(fields).sign(s.jp.root)
    refused_or_accepted(lambda: s.fresh_store().update_bundle(token, NOW))


def test_the_fuzzed_material_is_genuine_before_it_is_mutated() -> None:
    """Sanity: each original passes, so the properties above test mutations, not broken fixtures."""
    s = scene()
    s.fresh_store(with_status_list=True).apply_status_delta(s.status_delta, NOW)
    assert parse_status_list_token(s.status_token).status_of(11) == 0
    Agreement.parse(s.agreement).verify(NOW)
    assert RootRotation.parse(s.rotation).verify_from(s.rotation_from) != s.rotation_from
