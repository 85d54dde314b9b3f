"""The trust store: what a node accepts, what it refuses, and that a refusal changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clearance.agreement import AGREEMENT_TYP, Agreement, Party
from clearance.bundle import ROOT_TYP, SCHEMA, RootRotation
from clearance.encoding import b64url_decode
from clearance.errors import Reason
from clearance.jws import sign_general
from clearance.keys import SigningKey
from clearance.statusdelta import sign_status_delta
from clearance.statuslist import Status, StatusList
from clearance.trust import TrustStore
from tests.factories import DAY, NOW, RegistryWorld, Verifier, refused


def store_for(world: RegistryWorld, now: int = NOW) -> TrustStore:
    store = TrustStore(world.root.public)
    store.update_bundle(world.bundle(), now)
    return store


def snapshot(store: TrustStore) -> tuple[Any, ...]:
    return (
        store.root,
        store.home,
        dict(store.foreign),
        {uri: token.jws.raw for uri, token in store.status_lists.items()},
        dict(store.agreements),
        list(store.previous_roots),
    )


# -- home bundle ------------------------------------------------------------------------


def test_a_bundle_signed_by_the_pinned_root_is_accepted() -> None:
    world = RegistryWorld.create()
    store = TrustStore(world.root.public)
    bundle = store.update_bundle(world.bundle(), NOW)
    assert store.require_home(NOW) is bundle
    assert store.bundle_for_issuer(world.issuer, NOW) is bundle


def test_the_same_bundle_again_and_a_newer_one_are_accepted() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    store.update_bundle(store.require_home(NOW).raw or "", NOW)
    assert store.update_bundle(world.bundle(version=2), NOW).version == 2


def test_nothing_is_decided_before_a_bundle_is_held() -> None:
    store = TrustStore(SigningKey.generate().public)
    with refused(Reason.NO_TRUSTED_BUNDLE):
        store.require_home(NOW)


def test_a_bundle_signed_by_another_root_is_refused() -> None:
    world = RegistryWorld.create()
    store = TrustStore(world.root.public)
    with refused(Reason.ROOT_MISMATCH):
        store.update_bundle(world.bundle(root=SigningKey.generate()), NOW)
    assert store.home is None


def test_a_bundle_with_a_lower_version_is_a_rollback_and_changes_nothing() -> None:
    world = RegistryWorld.create()
    store = TrustStore(world.root.public)
    store.update_bundle(world.bundle(version=5), NOW)
    before = snapshot(store)
    with refused(Reason.ROLLBACK):
        store.update_bundle(world.bundle(version=4), NOW)
    assert snapshot(store) == before


def test_two_different_bundles_with_the_same_version_are_refused() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    with refused(Reason.ROLLBACK):
        store.update_bundle(world.bundle(expires_in=2 * DAY), NOW)


def test_an_expired_bundle_is_refused_at_update() -> None:
    world = RegistryWorld.create()
    store = TrustStore(world.root.public)
    with refused(Reason.BUNDLE_EXPIRED):
        store.update_bundle(world.bundle(issued_at=NOW - 2 * DAY, expires_in=DAY), NOW)
    assert store.home is None


def test_an_expired_bundle_freezes_every_decision() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    with refused(Reason.BUNDLE_EXPIRED):
        store.require_home(NOW + DAY)
    with refused(Reason.BUNDLE_EXPIRED):
        store.bundle_for_issuer(world.issuer, NOW + DAY)


def test_a_bundle_for_another_jurisdiction_is_refused_even_from_the_same_root() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    with refused(Reason.ROOT_MISMATCH):
        store.update_bundle(world.bundle(version=2, jurisdiction="US"), NOW)


def test_an_unknown_issuer_is_untrusted() -> None:
    store = store_for(RegistryWorld.create())
    with refused(Reason.UNTRUSTED_ISSUER):
        store.bundle_for_issuer("https://registry.evil.example", NOW)


# -- root rotation ------------------------------------------------------------------------


def test_after_a_rotation_only_bundles_of_the_new_root_are_accepted() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    old_root = world.root
    store.update_root(world.rotate_root())
    assert store.root == world.root.public
    assert store.previous_roots == [old_root.public]
    with refused(Reason.ROOT_MISMATCH):
        store.update_bundle(world.bundle(version=2, root=old_root), NOW)
    assert store.update_bundle(world.bundle(version=2), NOW).root == world.root.kid


def forged_rotation(world: RegistryWorld, signers: list[SigningKey], new: SigningKey) -> RootRotation:
    payload = {
        "schema": SCHEMA,
        "jurisdiction": world.jurisdiction,
        "version": 2,
        "root": new.public.jwk,
        "previous": world.root.kid,
        "iat": NOW,
    }
    return RootRotation.parse(sign_general(payload, [(k, {"typ": ROOT_TYP}) for k in signers]).to_json())


@pytest.mark.parametrize("forgery", ["signed-only-by-the-new-key", "signed-by-an-unrelated-key"])
def test_a_forged_rotation_is_refused_and_the_pinned_root_stays(forgery: str) -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    before = snapshot(store)
    new = SigningKey.generate()
    signers = [new] if forgery == "signed-only-by-the-new-key" else [SigningKey.generate(), new]
    with refused(Reason.ROTATION_INVALID):
        store.update_root(forged_rotation(world, signers, new))
    assert snapshot(store) == before


def test_a_rotation_for_another_jurisdiction_is_refused() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    rotation = RootRotation.create(
        jurisdiction="US", version=2, old=world.root, new=SigningKey.generate(), issued_at=NOW
    )
    with refused(Reason.ROTATION_INVALID):
        store.update_root(rotation)
    assert store.root == world.root.public


# -- status lists ----------------------------------------------------------------------------


def test_a_status_list_signed_by_an_issuing_key_of_the_bundle_is_accepted() -> None:
    world = RegistryWorld.create()
    world.status_list.set(3, Status.REVOKED)
    store = store_for(world)
    token = store.update_status_list(world.status_token(), NOW)
    assert store.status_list(world.status_uri) is token
    assert token.status_of(3) == Status.REVOKED


def test_a_status_list_older_than_the_one_held_is_a_rollback() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    store.update_status_list(world.status_token(seq=5), NOW)
    before = snapshot(store)
    with refused(Reason.ROLLBACK):
        store.update_status_list(world.status_token(seq=4), NOW)
    with refused(Reason.ROLLBACK):
        store.update_status_list(world.status_token(issued_at=NOW - 60, seq=9), NOW)
    assert snapshot(store) == before


def test_two_different_status_lists_of_the_same_version_are_refused() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    store.update_status_list(world.status_token(), NOW)
    world.status_list.set(1, Status.REVOKED)
    with refused(Reason.ROLLBACK):
        store.update_status_list(world.status_token(), NOW)


def test_the_same_status_list_again_is_accepted() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    token = world.status_token()
    held = store.update_status_list(token, NOW)
    assert store.update_status_list(token, NOW) is held


def test_a_status_list_signed_by_a_key_not_in_the_bundle_is_refused() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    with refused(Reason.UNKNOWN_KEY):
        store.update_status_list(world.status_token(key=SigningKey.generate()), NOW)
    with refused(Reason.UNKNOWN_KEY):
        store.update_status_list(world.status_token(key=world.root), NOW)
    assert store.status_lists == {}


def test_a_status_list_no_trusted_bundle_lists_is_refused() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    world.status_uri = "https://registry.jp.example/statuslists/unlisted"
    with refused(Reason.UNTRUSTED_ISSUER):
        store.update_status_list(world.status_token(), NOW)


def test_an_expired_status_list_is_refused() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    with refused(Reason.STATUS_LIST_EXPIRED):
        store.update_status_list(world.status_token(issued_at=NOW - 2 * DAY, expires_in=DAY), NOW)


def test_a_status_list_with_other_bits_than_its_bundle_announces_is_malformed() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    world.status_list = StatusList(1, 1024)
    with refused(Reason.MALFORMED):
        store.update_status_list(world.status_token(), NOW)


def test_without_a_status_list_the_store_cannot_decide() -> None:
    world = RegistryWorld.create()
    with refused(Reason.STATUS_LIST_MISSING):
        store_for(world).status_list(world.status_uri)


def test_a_new_bundle_that_drops_the_issuing_key_drops_its_status_lists() -> None:
    world = RegistryWorld.create()
    store = store_for(world)
    store.update_status_list(world.status_token(), NOW)
    world.issuing = SigningKey.generate()
    store.update_bundle(world.bundle(version=2), NOW)
    assert store.status_lists == {}


# -- status deltas ----------------------------------------------------------------------------


def delta(
    world: RegistryWorld, *, base_seq: int | None = None, updates: list[tuple[int, int]], **changes: Any
) -> str:
    fields: dict[str, Any] = dict(uri=world.status_uri, issued_at=NOW + 60, expires_at=NOW + DAY)
    fields.update(changes)
    key = fields.pop("key", world.issuing)
    return sign_status_delta(
        key, base_seq=world.seq if base_seq is None else base_seq, updates=updates, **fields
    )


def test_a_delta_on_the_list_held_updates_it_and_renews_its_freshness() -> None:
    world = RegistryWorld.create()
    store = Verifier.synced(world).trust
    updated = store.apply_status_delta(
        delta(world, updates=[(10, Status.REVOKED), (11, Status.SUSPENDED)]), NOW
    )
    assert (updated.status_of(10), updated.status_of(11), updated.status_of(12)) == (1, 2, 0)
    assert (updated.seq, updated.issued_at) == (world.seq + 1, NOW + 60)
    assert store.status_list(world.status_uri) is updated


def test_a_delta_applied_twice_is_a_rollback() -> None:
    world = RegistryWorld.create()
    store = Verifier.synced(world).trust
    token = delta(world, updates=[(10, 1)])
    store.apply_status_delta(token, NOW)
    with refused(Reason.ROLLBACK):
        store.apply_status_delta(token, NOW)


def test_a_delta_on_another_list_version_asks_for_the_full_list() -> None:
    world = RegistryWorld.create()
    store = Verifier.synced(world).trust
    with refused(Reason.STATUS_LIST_MISSING):
        store.apply_status_delta(delta(world, base_seq=world.seq + 1, updates=[]), NOW)


def test_a_delta_without_a_list_held_asks_for_the_full_list() -> None:
    world = RegistryWorld.create()
    with refused(Reason.STATUS_LIST_MISSING):
        store_for(world).apply_status_delta(delta(world, updates=[]), NOW)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"key": SigningKey.generate()}, Reason.UNKNOWN_KEY, id="unknown-key"),
        pytest.param(
            {"issued_at": NOW - DAY, "expires_at": NOW - 1}, Reason.ROLLBACK, id="older-than-the-list"
        ),
        pytest.param({"expires_at": NOW}, Reason.STATUS_LIST_EXPIRED, id="expired"),
        pytest.param({"uri": "https://elsewhere.example/1"}, Reason.UNTRUSTED_ISSUER, id="unlisted-list"),
    ],
)
def test_a_bad_delta_is_refused_and_changes_nothing(changes: dict[str, Any], reason: Reason) -> None:
    world = RegistryWorld.create()
    store = Verifier.synced(world).trust
    before = snapshot(store)
    with refused(reason):
        store.apply_status_delta(delta(world, updates=[(10, 1)], **changes), NOW)
    assert snapshot(store) == before


@pytest.mark.parametrize("update", [(131_072, 1), (10, 4)], ids=["index-outside", "status-too-wide"])
def test_a_delta_update_that_does_not_fit_the_list_is_malformed(update: tuple[int, int]) -> None:
    world = RegistryWorld.create()
    store = Verifier.synced(world).trust
    with refused(Reason.MALFORMED):
        store.apply_status_delta(delta(world, updates=[update]), NOW)
    assert store.status_list(world.status_uri).status_of(10) == 0


# -- foreign registries -------------------------------------------------------------------------


def federation(
    *, agreement_days: int = 365, bundle_days: int = 1
) -> tuple[RegistryWorld, RegistryWorld, TrustStore]:
    jp, us = RegistryWorld.create("JP"), RegistryWorld.create("US")
    agreement = jp.agree_with(us, expires_in=agreement_days * DAY).to_json()
    jp.agreements.append(agreement)
    us.agreements.append(agreement)
    store = TrustStore(jp.root.public)
    store.update_bundle(jp.bundle(expires_in=bundle_days * DAY), NOW)
    return jp, us, store


def test_a_foreign_bundle_is_trusted_through_an_agreement_both_roots_signed() -> None:
    _jp, us, store = federation()
    bundle = store.update_foreign_bundle(us.bundle(), NOW)
    assert store.foreign_trust("US", NOW).bundle is bundle
    assert store.bundle_for_issuer(us.issuer, NOW) is bundle
    store.update_status_list(us.status_token(), NOW)
    assert us.status_uri in store.status_lists


def test_a_foreign_bundle_signed_by_a_root_in_no_agreement_is_refused() -> None:
    _jp, us, store = federation()
    stranger = RegistryWorld.create("FR")
    with refused(Reason.UNTRUSTED_ISSUER):
        store.update_foreign_bundle(stranger.bundle(), NOW)
    with refused(Reason.UNTRUSTED_ISSUER):
        store.update_foreign_bundle(us.bundle(root=SigningKey.generate()), NOW)
    assert store.foreign == {}


def test_a_foreign_bundle_whose_header_names_the_partner_root_but_is_signed_by_another_is_refused() -> None:
    _jp, us, store = federation()
    forged = us.bundle(root=SigningKey.generate())
    _header, payload, signature = forged.split(".")
    genuine_header = us.bundle().split(".")[0]
    with refused(Reason.ROOT_MISMATCH):
        store.update_foreign_bundle(f"{genuine_header}.{payload}.{signature}", NOW)


def test_an_agreement_signed_by_one_party_only_is_refused_with_the_home_bundle() -> None:
    jp, us = RegistryWorld.create("JP"), RegistryWorld.create("US")
    proposal = Agreement.propose(
        jp.root,
        agreement_id="JP-US-1",
        parties=(Party("JP", jp.root.public, jp.issuer), Party("US", us.root.public, us.issuer)),
        levels=[("SECRET", "SECRET")],
        categories={"JP": ["cyber-threat"], "US": ["cyber-threat"]},
        issued_at=NOW,
        not_before=NOW,
        expires_at=NOW + DAY,
    )
    jp.agreements.append(proposal.to_json())
    store = TrustStore(jp.root.public)
    with refused(Reason.AGREEMENT_INVALID):
        store.update_bundle(jp.bundle(), NOW)
    assert store.home is None


def test_an_agreement_whose_level_table_maps_one_level_to_two_is_refused_even_if_signed() -> None:
    jp, us = RegistryWorld.create("JP"), RegistryWorld.create("US")
    payload = json.loads(b64url_decode(jp.agree_with(us).to_json()["payload"]))
    payload["levels"] = [{"JP": "SECRET", "US": "SECRET"}, {"JP": "SECRET", "US": "TOP_SECRET"}]
    jp.agreements.append(
        sign_general(
            payload, [(jp.root, {"typ": AGREEMENT_TYP}), (us.root, {"typ": AGREEMENT_TYP})]
        ).to_json()
    )
    with refused(Reason.AGREEMENT_INVALID):
        TrustStore(jp.root.public).update_bundle(jp.bundle(), NOW)


def test_an_agreement_that_does_not_name_our_root_is_refused() -> None:
    jp, us, fr = RegistryWorld.create("JP"), RegistryWorld.create("US"), RegistryWorld.create("FR")
    jp.agreements.append(us.agree_with(fr).to_json())
    with refused(Reason.AGREEMENT_INVALID):
        TrustStore(jp.root.public).update_bundle(jp.bundle(), NOW)


def test_two_agreements_with_one_partner_are_refused() -> None:
    jp, us = RegistryWorld.create("JP"), RegistryWorld.create("US")
    jp.agreements += [jp.agree_with(us).to_json(), jp.agree_with(us, expires_in=DAY).to_json()]
    with refused(Reason.AGREEMENT_INVALID):
        TrustStore(jp.root.public).update_bundle(jp.bundle(), NOW)


def test_an_agreement_whose_validity_has_ended_admits_no_foreign_bundle() -> None:
    _jp, us, store = federation(agreement_days=1, bundle_days=10)
    with refused(Reason.AGREEMENT_INVALID):
        store.update_foreign_bundle(us.bundle(issued_at=NOW + DAY, expires_in=DAY), NOW + DAY)


def test_an_agreement_that_ends_stops_decisions_on_foreign_credentials() -> None:
    _jp, us, store = federation(agreement_days=1, bundle_days=10)
    store.update_foreign_bundle(us.bundle(expires_in=10 * DAY), NOW)
    store.foreign_trust("US", NOW + DAY - 1)
    with refused(Reason.AGREEMENT_INVALID):
        store.foreign_trust("US", NOW + DAY)
    with refused(Reason.AGREEMENT_INVALID):
        store.bundle_for_issuer(us.issuer, NOW + DAY)


def test_a_partner_that_no_longer_lists_the_agreement_has_terminated_it() -> None:
    _jp, us, store = federation()
    us.agreements = []
    with refused(Reason.AGREEMENT_TERMINATED):
        store.update_foreign_bundle(us.bundle(), NOW)


def test_a_foreign_bundle_for_another_party_than_the_agreement_names_is_refused() -> None:
    _jp, us, store = federation()
    with refused(Reason.AGREEMENT_INVALID):
        store.update_foreign_bundle(us.bundle(issuer="https://registry.other.example"), NOW)


def test_foreign_bundles_roll_forward_only_and_expire() -> None:
    _jp, us, store = federation(bundle_days=10)
    store.update_foreign_bundle(us.bundle(version=3), NOW)
    with refused(Reason.ROLLBACK):
        store.update_foreign_bundle(us.bundle(version=2), NOW)
    with refused(Reason.BUNDLE_EXPIRED):
        store.update_foreign_bundle(us.bundle(version=4, issued_at=NOW - 2 * DAY, expires_in=DAY), NOW)
    with refused(Reason.BUNDLE_EXPIRED):
        store.foreign_trust("US", NOW + DAY)


def test_a_foreign_status_list_must_be_signed_by_the_foreign_issuing_key() -> None:
    jp, us, store = federation()
    store.update_foreign_bundle(us.bundle(), NOW)
    with refused(Reason.UNKNOWN_KEY):
        store.update_status_list(us.status_token(key=jp.issuing), NOW)


def test_a_home_bundle_without_the_agreement_ends_foreign_trust() -> None:
    jp, us, store = federation()
    store.update_foreign_bundle(us.bundle(), NOW)
    store.update_status_list(us.status_token(), NOW)
    jp.agreements = []
    store.update_bundle(jp.bundle(version=2), NOW)
    assert store.foreign == {}
    assert us.status_uri not in store.status_lists
    with refused(Reason.UNTRUSTED_ISSUER):
        store.foreign_trust("US", NOW)


def test_agreements_signed_by_a_rotated_away_root_stay_valid() -> None:
    jp, us, store = federation()
    store.update_root(jp.rotate_root())
    store.update_bundle(jp.bundle(version=2), NOW)
    assert store.update_foreign_bundle(us.bundle(), NOW).jurisdiction == "US"


def test_a_refused_foreign_bundle_changes_nothing() -> None:
    _jp, us, store = federation()
    store.update_foreign_bundle(us.bundle(version=2), NOW)
    before = snapshot(store)
    with refused(Reason.ROLLBACK):
        store.update_foreign_bundle(us.bundle(version=1), NOW)
    assert snapshot(store) == before
