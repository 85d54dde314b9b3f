"""The attacks of the TUF specification (1.0, section 1.5.2), at the trust-store level.

Each attack is run against the threshold pieces (root documents, threshold
bundles) and, where it applies, against today's :class:`TrustStore` with its
single-key roots. Each is refused with a stable reason and changes nothing.
"""

from __future__ import annotations

import dataclasses

from clearance.bundle import RootRotation, sign_threshold_bundle, verify_threshold_bundle
from clearance.errors import Reason
from clearance.jws import MultiSignedJWS
from clearance.keys import SigningKey
from clearance.trust import TrustStore
from tests.clearance.threshold_world import ThresholdRegistry, keys
from tests.factories import DAY, NOW, RegistryWorld, Verifier, refused

# -- arbitrary metadata: a bundle signed by a key outside the root set ----------


def test_arbitrary_bundle_signed_outside_the_root_set_is_refused() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    attacker = keys(2)

    with refused(Reason.THRESHOLD_NOT_MET) as caught:
        verify_threshold_bundle(sign_threshold_bundle(registry.bundle(), attacker).to_json(), registry.root)
    assert "2 by keys outside the set" in caught.value.detail


def test_arbitrary_bundle_is_refused_by_the_trust_store() -> None:
    world = RegistryWorld.create()
    verifier = Verifier.synced(world)

    with refused(Reason.ROOT_MISMATCH):
        verifier.trust.update_bundle(world.bundle(version=2, root=SigningKey.generate()), NOW)
    assert verifier.trust.home is not None
    assert verifier.trust.home.version == 1


# -- rollback: an older bundle replayed -----------------------------------------


def test_rollback_to_an_older_bundle_is_refused() -> None:
    world = RegistryWorld.create()
    verifier = Verifier.synced(world)
    old = world.bundle(version=1)
    verifier.trust.update_bundle(world.bundle(version=2), NOW)

    with refused(Reason.ROLLBACK):
        verifier.trust.update_bundle(old, NOW)
    assert verifier.trust.home is not None
    assert verifier.trust.home.version == 2


def test_a_second_bundle_claiming_the_same_version_is_refused() -> None:
    world = RegistryWorld.create()
    verifier = Verifier.synced(world)

    with refused(Reason.ROLLBACK):
        verifier.trust.update_bundle(world.bundle(version=1, expires_in=2 * DAY), NOW)


# -- indefinite freeze: an expired bundle, or holding one past its expiry ---------


def test_indefinite_freeze_is_refused() -> None:
    world = RegistryWorld.create()
    verifier = Verifier.synced(world)
    later = NOW + 2 * DAY

    with refused(Reason.BUNDLE_EXPIRED):
        verifier.trust.require_home(later)  # the held bundle stops deciding once expired
    with refused(Reason.BUNDLE_EXPIRED):
        verifier.trust.update_bundle(world.bundle(version=2, expires_in=DAY), later)  # a stale new one too


# -- mix-and-match: another registry's signatures, or another payload's ----------


def test_a_bundle_with_another_registrys_signatures_is_refused() -> None:
    jp, us = ThresholdRegistry.create("JP"), ThresholdRegistry.create("US")
    # JP's payload (naming JP's root), signed by k of US's root keys.
    with refused(Reason.THRESHOLD_NOT_MET):
        verify_threshold_bundle(sign_threshold_bundle(jp.bundle(), us.root_keys[:2]).to_json(), jp.root)
    # US's genuine bundle offered as JP's.
    with refused(Reason.ROOT_MISMATCH):
        verify_threshold_bundle(sign_threshold_bundle(us.bundle(), us.root_keys[:2]).to_json(), jp.root)


def test_signatures_taken_from_another_bundle_do_not_count() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    genuine_v1 = sign_threshold_bundle(registry.bundle(version=1), registry.root_keys[:2])
    v2 = sign_threshold_bundle(registry.bundle(version=2), [])
    spliced = MultiSignedJWS(v2.payload, v2.payload_b64, genuine_v1.signatures)

    with refused(Reason.THRESHOLD_NOT_MET) as caught:
        verify_threshold_bundle(spliced.to_json(), registry.root)
    assert "2 that do not verify" in caught.value.detail


def test_a_foreign_bundle_without_an_agreement_is_refused_by_the_trust_store() -> None:
    home, stranger = RegistryWorld.create("JP"), RegistryWorld.create("US")
    verifier = Verifier.synced(home)

    with refused(Reason.UNTRUSTED_ISSUER):
        verifier.trust.update_foreign_bundle(stranger.bundle(), NOW)
    assert verifier.trust.foreign == {}


# -- key compromise below the threshold -------------------------------------------


def test_k_minus_one_compromised_keys_cannot_sign_a_bundle() -> None:
    registry = ThresholdRegistry.create(n=5, k=3)
    stolen = registry.root_keys[:2]
    forged = sign_threshold_bundle(registry.bundle(version=99), [*stolen, *keys(3)])

    with refused(Reason.THRESHOLD_NOT_MET) as caught:
        verify_threshold_bundle(forged.to_json(), registry.root)
    assert "2 valid signature(s)" in caught.value.detail


def test_one_compromised_key_signing_twice_counts_once() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    once = sign_threshold_bundle(registry.bundle(), registry.root_keys[:1])
    twice = MultiSignedJWS(once.payload, once.payload_b64, once.signatures * 2)

    with refused(Reason.MALFORMED):
        verify_threshold_bundle(twice.to_json(), registry.root)  # refused before counting


# -- malicious root rotation ----------------------------------------------------------


def test_a_rotation_signed_only_by_the_new_set_is_refused() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    v1, attacker = registry.root, keys(3)
    v2 = registry.rotate(attacker, 2, attacker)

    with refused(Reason.THRESHOLD_NOT_MET):
        v1.verify_successor(v2)


def test_a_rotation_skipping_a_version_is_refused() -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    v1 = registry.root
    new = keys(1)
    v2 = dataclasses.replace(v1, keys=(new[0].public,), document=None)
    v3 = dataclasses.replace(v2, version=3, document=None).sign(new)  # what v2 would sign, as v3

    with refused(Reason.VERSION_NOT_NEXT):
        v1.verify_successor(v3)


def test_a_rotation_signed_by_an_older_set_is_refused() -> None:
    registry = ThresholdRegistry.create(n=2, k=2)
    v1_keys = registry.root_keys
    v2_keys = keys(2)
    v2 = registry.rotate(v2_keys, 2, v1_keys + v2_keys)
    v3_keys = keys(2)
    v3 = registry.rotate(v3_keys, 2, v1_keys + v3_keys)  # the keys v2 retired

    with refused(Reason.THRESHOLD_NOT_MET):
        v2.verify_successor(v3)


def test_the_trust_store_refuses_a_rotation_signed_only_by_the_new_root() -> None:
    world = RegistryWorld.create()
    store = TrustStore(world.root.public)
    attacker = SigningKey.generate()
    rotation = RootRotation.create(jurisdiction="JP", version=2, old=attacker, new=attacker, issued_at=NOW)

    with refused(Reason.ROTATION_INVALID):
        store.update_root(rotation)
    assert store.root == world.root.public
    assert store.previous_roots == []
