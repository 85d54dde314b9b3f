"""Threshold root documents: k distinct keys, chained versions, a stable fingerprint."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import MalformedError, Reason
from clearance.jws import MultiSignedJWS, add_signature
from clearance.keys import SigningKey
from clearance.rootdoc import ROOT_DOCUMENT_TYP, RootDocument, follow_root_chain, verify_threshold
from tests.clearance.threshold_world import ThresholdRegistry, keys
from tests.factories import NOW, refused


def test_a_first_version_signed_by_k_of_its_keys_verifies_and_round_trips() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    root = registry.root

    assert root.verify_self_signed() == {k.kid for k in registry.root_keys[:2]}
    parsed = RootDocument.parse(json.loads(json.dumps(root.to_json())))
    assert parsed.fingerprint == root.fingerprint
    assert parsed.keys == root.keys
    assert parsed.verify_self_signed() == root.verify_self_signed()


def test_the_fingerprint_is_the_hash_of_the_payload_and_ignores_signatures() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    root = registry.root
    more = root.sign(registry.root_keys[2:])

    assert more.fingerprint == root.fingerprint
    assert dataclasses.replace(root, threshold=3, document=None).fingerprint != root.fingerprint
    assert dataclasses.replace(root, issued_at=NOW + 1, document=None).fingerprint != root.fingerprint


def test_a_single_key_root_is_a_one_of_one_document() -> None:
    key = SigningKey.generate()
    root = RootDocument("JP", 1, 1, (key.public,), NOW).sign([key])

    assert root.verify_self_signed() == {key.kid}


def test_another_jose_library_verifies_each_signature_of_a_root_document() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    serialized = json.dumps(registry.root.to_json())

    for key in registry.root_keys[:2]:
        theirs = JWS()
        theirs.deserialize(serialized)
        theirs.verify(JWK(**key.public.jwk), alg="EdDSA")
        assert json.loads(theirs.payload) == registry.root.to_payload()


@pytest.mark.parametrize(
    "change",
    [
        {"threshold": 0},
        {"threshold": 4},
        {"keys": ()},
        {"version": 0},
    ],
)
def test_a_document_that_cannot_be_satisfied_is_refused(change: dict[str, Any]) -> None:
    root = ThresholdRegistry.create(n=3, k=2).root
    with pytest.raises(MalformedError):
        dataclasses.replace(root, document=None, **change)


def test_a_document_listing_a_key_twice_is_refused() -> None:
    key = SigningKey.generate()
    with pytest.raises(MalformedError, match="twice"):
        RootDocument("JP", 1, 2, (key.public, key.public), NOW)


def test_a_payload_that_is_not_canonical_is_refused() -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    payload = json.dumps(registry.root.to_payload(), indent=1).encode()
    doc = MultiSignedJWS(registry.root.to_payload(), b64url_encode(payload), ())
    doc = add_signature(doc, registry.root_keys[0], {"typ": ROOT_DOCUMENT_TYP})

    with pytest.raises(MalformedError, match="canonical"):
        RootDocument.parse(doc.to_json())


def test_k_minus_one_signatures_do_not_meet_the_threshold() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    lonely = dataclasses.replace(registry.root, document=None).sign(registry.root_keys[:1])

    with refused(Reason.THRESHOLD_NOT_MET) as caught:
        lonely.verify_self_signed()
    assert "1 valid signature(s)" in caught.value.detail
    assert "2 of 3 required" in caught.value.detail


def test_the_same_key_twice_counts_once() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    single = dataclasses.replace(registry.root, document=None).sign(registry.root_keys[:1])
    assert single.document is not None
    doubled = MultiSignedJWS(
        single.document.payload, single.document.payload_b64, single.document.signatures * 2
    )

    with refused(Reason.THRESHOLD_NOT_MET):
        verify_threshold(doubled, registry.root, typ=ROOT_DOCUMENT_TYP, what="root")
    with pytest.raises(MalformedError, match="distinct"):
        RootDocument.parse(doubled.to_json())


def test_signatures_by_unknown_keys_with_the_wrong_typ_or_that_do_not_verify_do_not_count() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    draft = dataclasses.replace(registry.root, document=None).sign(registry.root_keys[:1])
    assert draft.document is not None
    doc = add_signature(draft.document, SigningKey.generate(), {"typ": ROOT_DOCUMENT_TYP})
    doc = add_signature(doc, registry.root_keys[1], {"typ": "clearance-agreement+jws"})
    forged = dataclasses.replace(doc.signatures[0], signature=bytes(64))
    doc = MultiSignedJWS(doc.payload, doc.payload_b64, (*doc.signatures, forged))

    with refused(Reason.THRESHOLD_NOT_MET) as caught:
        verify_threshold(doc, registry.root, typ=ROOT_DOCUMENT_TYP, what="root")
    assert "1 by keys outside the set" in caught.value.detail


def test_a_rotation_signed_by_k_old_and_k_new_keys_is_followed() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    old_keys, new_keys = registry.root_keys, keys(3)
    v1 = registry.root
    v2 = registry.rotate(new_keys, 2, old_keys[:2] + new_keys[:2])

    assert v1.verify_successor(v2) is v2
    assert follow_root_chain(v1.fingerprint, registry.roots) is v2


def test_a_rotation_signed_only_by_the_new_set_is_refused() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    v1 = registry.root
    new_keys = keys(3)
    v2 = registry.rotate(new_keys, 2, new_keys)

    with refused(Reason.THRESHOLD_NOT_MET) as caught:
        v1.verify_successor(v2)
    assert "by the keys of v1" in caught.value.detail


def test_a_rotation_not_signed_by_its_own_new_keys_is_refused() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    v1, old_keys = registry.root, registry.root_keys
    v2 = registry.rotate(keys(3), 2, old_keys)

    with refused(Reason.THRESHOLD_NOT_MET) as caught:
        v1.verify_successor(v2)
    assert "by its own keys" in caught.value.detail


def test_a_rotation_that_skips_a_version_is_refused() -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    v1, old_keys, new_keys = registry.root, registry.root_keys, keys(1)
    skipping = RootDocument("JP", 3, 1, (new_keys[0].public,), NOW).sign(old_keys + new_keys)

    with refused(Reason.VERSION_NOT_NEXT):
        v1.verify_successor(skipping)


def test_a_rotation_signed_by_an_older_set_is_refused() -> None:
    registry = ThresholdRegistry.create(n=2, k=1)
    v1_keys = registry.root_keys
    v2_keys = keys(2)
    v2 = registry.rotate(v2_keys, 1, v1_keys[:1] + v2_keys[:1])
    v3_keys = keys(2)
    v3 = registry.rotate(v3_keys, 1, v1_keys[:1] + v3_keys[:1])  # v1's key, dropped in v2

    with refused(Reason.THRESHOLD_NOT_MET) as caught:
        v2.verify_successor(v3)
    assert "outside the set" in caught.value.detail


def test_a_rotation_to_another_jurisdiction_is_refused() -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    foreign = RootDocument("US", 2, 1, registry.root.keys, NOW).sign(registry.root_keys)

    with refused(Reason.ROTATION_INVALID):
        registry.root.verify_successor(foreign)


def test_a_chain_is_followed_from_a_pin_in_its_middle_and_refused_without_the_pin() -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    for _ in range(3):
        new = keys(1)
        registry.rotate(new, 1, registry.root_keys + new)
    v1, v2, v3, v4 = registry.roots

    assert follow_root_chain(v2.fingerprint, registry.roots) is v4
    assert follow_root_chain(v4.fingerprint, registry.roots) is v4
    with refused(Reason.ROOT_MISMATCH):
        follow_root_chain(b64url_encode(canonical_json({"not": "pinned"})), registry.roots)
    with refused(Reason.VERSION_NOT_NEXT):
        follow_root_chain(v1.fingerprint, [v1, v3, v2, v4])
