"""Trust bundles (signed by the root) and root rotations (signed by the old and the new root)."""

from __future__ import annotations

from typing import Any

import pytest

from clearance.bundle import (
    BUNDLE_TYP,
    ROOT_TYP,
    SCHEMA,
    IssuingKey,
    RootRotation,
    StatusListLocation,
    TrustBundle,
    follow_rotations,
)
from clearance.errors import Reason
from clearance.jws import decode_compact, encode_compact, sign_general
from clearance.keys import SigningKey
from tests.factories import DAY, LEVELS, NOW, RegistryWorld, refused


def test_bundle_round_trips_through_its_signed_form() -> None:
    world = RegistryWorld.create()
    token = world.bundle(version=3)
    bundle = TrustBundle.verify(token, world.root.public)
    assert (bundle.jurisdiction, bundle.version, bundle.issued_at, bundle.expires_at) == (
        "JP",
        3,
        NOW,
        NOW + DAY,
    )
    assert bundle.root == world.root.kid
    assert bundle.levels == LEVELS
    assert bundle.issuing_key(world.issuing.kid).key == world.issuing.public
    assert bundle.raw == token
    assert TrustBundle.from_payload(bundle.to_payload()) == bundle


def test_bundle_header_names_its_type_and_root() -> None:
    world = RegistryWorld.create()
    header = decode_compact(world.bundle()).header
    assert header["typ"] == BUNDLE_TYP
    assert header["kid"] == world.root.kid
    assert TrustBundle.header_root(world.bundle()) == world.root.public


def test_bundle_signed_by_another_root_is_refused() -> None:
    world = RegistryWorld.create()
    impostor = SigningKey.generate()
    with refused(Reason.ROOT_MISMATCH):
        TrustBundle.verify(world.bundle(root=impostor), world.root.public)


def test_bundle_whose_kid_claims_the_root_but_is_signed_by_another_key_is_refused() -> None:
    world = RegistryWorld.create()
    payload = decode_compact(world.bundle()).payload
    impostor = SigningKey.generate()
    forged = encode_compact({"typ": BUNDLE_TYP, "kid": world.root.kid}, payload, impostor)
    with refused(Reason.BAD_SIGNATURE):
        TrustBundle.verify(forged, world.root.public)


def test_a_root_cannot_sign_a_bundle_naming_another_root() -> None:
    world = RegistryWorld.create()
    bundle = TrustBundle.verify(world.bundle(), world.root.public)
    with refused(Reason.MALFORMED):
        bundle.sign(SigningKey.generate())


def test_bundle_with_another_typ_is_refused() -> None:
    world = RegistryWorld.create()
    payload = decode_compact(world.bundle()).payload
    token = encode_compact({"typ": "JWT", "kid": world.root.kid}, payload, world.root)
    with refused(Reason.WRONG_TYPE):
        TrustBundle.verify(token, world.root.public)


def test_lookups_name_what_is_missing() -> None:
    world = RegistryWorld.create()
    bundle = TrustBundle.verify(world.bundle(), world.root.public)
    assert bundle.level_rank("CONFIDENTIAL") < bundle.level_rank("TOP_SECRET")
    with refused(Reason.INVALID_CLAIM):
        bundle.level_rank("COSMIC")
    with refused(Reason.UNKNOWN_KEY):
        bundle.issuing_key(SigningKey.generate().kid)
    with refused(Reason.UNKNOWN_KEY):
        bundle.issuing_key(None)
    assert bundle.status_list_location(world.status_uri) == StatusListLocation(world.status_uri, 2)
    assert bundle.status_list_location("https://elsewhere.example") is None


def test_issuing_key_window_is_inclusive() -> None:
    key = IssuingKey(SigningKey.generate().public, NOW, NOW + DAY)
    assert key.covers(NOW)
    assert key.covers(NOW + DAY)
    assert not key.covers(NOW - 1)
    assert not key.covers(NOW + DAY + 1)
    with refused(Reason.MALFORMED):
        IssuingKey(key.key, NOW, NOW)


def payload_with(**changes: Any) -> dict[str, Any]:
    world = RegistryWorld.create()
    payload = dict(decode_compact(world.bundle()).payload)
    for name, value in changes.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"schema": 2}, id="unknown-schema"),
        pytest.param({"schema": None}, id="no-schema"),
        pytest.param({"version": -1}, id="negative-version"),
        pytest.param({"version": "2"}, id="version-as-text"),
        pytest.param({"exp": NOW}, id="expires-when-issued"),
        pytest.param({"jurisdiction": "Japan"}, id="bad-jurisdiction"),
        pytest.param({"iss": ""}, id="empty-issuer"),
        pytest.param({"root": None}, id="no-root"),
        pytest.param({"levels": []}, id="no-levels"),
        pytest.param({"levels": ["SECRET", "SECRET"]}, id="level-twice"),
        pytest.param({"levels": "SECRET"}, id="levels-not-an-array"),
        pytest.param({"categories": ["a b"]}, id="bad-category"),
        pytest.param({"issuing_keys": {"k": 1}}, id="issuing-keys-not-an-array"),
        pytest.param({"issuing_keys": ["k"]}, id="issuing-key-not-an-object"),
        pytest.param({"status_lists": [{"uri": "x", "bits": 3}]}, id="status-list-bits"),
        pytest.param(
            {"status_lists": [{"uri": "x", "bits": 2}, {"uri": "x", "bits": 2}]}, id="status-list-twice"
        ),
        pytest.param({"status_lists": ["x"]}, id="status-list-not-an-object"),
        pytest.param({"agreements": ["x"]}, id="agreement-not-an-object"),
    ],
)
def test_bundle_with_a_bad_field_is_malformed(changes: dict[str, Any]) -> None:
    with refused(Reason.MALFORMED):
        TrustBundle.from_payload(payload_with(**changes))


def test_bundle_listing_an_issuing_key_twice_is_malformed() -> None:
    payload = payload_with()
    payload["issuing_keys"] = payload["issuing_keys"] * 2
    with refused(Reason.MALFORMED):
        TrustBundle.from_payload(payload)


# -- root rotation -----------------------------------------------------------------------


def test_rotation_signed_by_the_old_and_new_root_yields_the_new_root() -> None:
    world = RegistryWorld.create()
    old = world.root
    rotation = world.rotate_root()
    parsed = RootRotation.parse(rotation.document.to_json())
    assert parsed.verify_from(old.public) == world.root.public
    assert (parsed.jurisdiction, parsed.previous) == ("JP", old.kid)


def test_a_chain_of_rotations_is_followed_one_step_at_a_time() -> None:
    world = RegistryWorld.create()
    first = world.root.public
    rotations = [world.rotate_root(), world.rotate_root()]
    assert follow_rotations(first, rotations) == world.root.public
    with refused(Reason.ROTATION_INVALID):
        follow_rotations(first, rotations[1:])


def forged_rotation(current: SigningKey, new: SigningKey, signers: list[SigningKey]) -> RootRotation:
    payload = {
        "schema": SCHEMA,
        "jurisdiction": "JP",
        "version": 2,
        "root": new.public.jwk,
        "previous": current.kid,
        "iat": NOW,
    }
    document = sign_general(payload, [(key, {"typ": ROOT_TYP}) for key in signers])
    return RootRotation.parse(document.to_json())


def test_rotation_signed_only_by_the_new_key_is_refused() -> None:
    current, new = SigningKey.generate(), SigningKey.generate()
    with refused(Reason.ROTATION_INVALID):
        forged_rotation(current, new, [new]).verify_from(current.public)


def test_rotation_signed_by_an_unrelated_key_and_the_new_key_is_refused() -> None:
    current, new, unrelated = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    with refused(Reason.ROTATION_INVALID):
        forged_rotation(current, new, [unrelated, new]).verify_from(current.public)


def test_rotation_signed_by_the_old_key_only_is_refused() -> None:
    """The new root must prove it holds its key too."""
    current, new = SigningKey.generate(), SigningKey.generate()
    with refused(Reason.ROTATION_INVALID):
        forged_rotation(current, new, [current]).verify_from(current.public)


def test_rotation_from_another_root_is_refused() -> None:
    other, new = SigningKey.generate(), SigningKey.generate()
    rotation = RootRotation.create(jurisdiction="JP", version=2, old=other, new=new, issued_at=NOW)
    with refused(Reason.ROTATION_INVALID):
        rotation.verify_from(SigningKey.generate().public)


def test_rotation_to_the_same_key_is_refused() -> None:
    current = SigningKey.generate()
    with refused(Reason.ROTATION_INVALID):
        forged_rotation(current, current, [current]).verify_from(current.public)


def test_rotation_with_a_third_signature_is_malformed() -> None:
    keys = [SigningKey.generate() for _ in range(3)]
    payload = {
        "schema": SCHEMA,
        "jurisdiction": "JP",
        "version": 2,
        "root": keys[1].public.jwk,
        "previous": keys[0].kid,
        "iat": NOW,
    }
    document = sign_general(payload, [(key, {"typ": ROOT_TYP}) for key in keys])
    with refused(Reason.MALFORMED):
        RootRotation.parse(document.to_json())
