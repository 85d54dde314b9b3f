"""Offline verification of a presentation: what it proves, and every check it makes.

The attacks of the issue's list live in test_hostile_inputs; this module covers
what a verifier relies on when things go right, and the remaining checks.
"""

from __future__ import annotations

from typing import Any

import pytest

from clearance.credentials import FACILITY_VCT, SD_JWT_VC_TYP
from clearance.errors import Reason, VerificationError
from clearance.jws import encode_compact
from clearance.keys import SigningKey
from clearance.sdjwt import issue, make_key_binding, split
from clearance.statuslist import StatusList
from clearance.trust import TrustStore
from clearance.verify import (
    DEFAULT_KB_MAX_AGE,
    DEFAULT_LEEWAY,
    MemoryNonceStore,
    StalenessPolicy,
    VerifiedPresentation,
)
from tests.factories import DAY, NOW, Holder, RegistryWorld, Verifier, present_credential, refused


@pytest.fixture
def world() -> RegistryWorld:
    return RegistryWorld.create("JP")


@pytest.fixture
def node(world: RegistryWorld) -> Verifier:
    return Verifier.synced(world)


def bind(credential: str, holder: Holder, node: Verifier, *, issued_at: int = NOW, **options: Any) -> str:
    """What a holder sends when challenged at ``issued_at``."""
    return present_credential(
        credential, holder, nonce=node.challenge(issued_at), issued_at=issued_at, **options
    )


# -- what a verified presentation proves ---------------------------------------------------------


def test_a_valid_presentation_proves_clearance_and_reveals_only_what_was_disclosed(
    world: RegistryWorld, node: Verifier
) -> None:
    credential, holder = world.issue(level="TOP_SECRET", index=77)
    verified = node.verify(bind(credential, holder, node, disclose=("family_name", "employer")))
    assert (verified.jurisdiction, verified.level, verified.categories) == (
        "JP",
        "TOP_SECRET",
        ("cyber-threat", "joint-research"),
    )
    assert verified.disclosed == {"family_name": "Yamada", "employer": "Example KK"}
    assert verified.credential.subject == "sub-77"
    assert verified.issuer_jurisdiction == "JP"
    assert verified.issuing_kid == world.issuing.kid
    assert verified.key_binding.audience == "node-a"
    assert verified.status_list_uri == world.status_uri
    assert (verified.status_list_age, verified.status_max_age) == (0, 3600)
    assert len(verified.checks) == 4
    assert all(verified.checks)


def test_nothing_personal_is_revealed_unless_disclosed(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    assert node.verify(bind(credential, holder, node)).disclosed == {}


def test_a_p256_holder_key_binds_with_es256(world: RegistryWorld, node: Verifier) -> None:
    holder = Holder(SigningKey.generate("ES256"))
    credential, _ = world.issue(holder)
    assert node.verify(bind(credential, holder, node)).credential.holder_key.alg == "ES256"


def test_a_facility_credential_authenticates_an_organizations_node(
    world: RegistryWorld, node: Verifier
) -> None:
    node_key = Holder()
    facility = world.facility(node_key.key, org_id="org-9")
    verified = node.verify(bind(facility, node_key, node), expected_vct=FACILITY_VCT)
    assert verified.credential.organization == {"id": "org-9", "name": "Example KK"}


def test_a_credential_of_another_type_than_expected_is_refused(world: RegistryWorld, node: Verifier) -> None:
    node_key = Holder()
    with refused(Reason.WRONG_TYPE):
        node.verify(bind(world.facility(node_key.key), node_key, node))
    credential, holder = world.issue()
    with refused(Reason.WRONG_TYPE):
        node.verify(bind(credential, holder, node), expected_vct=FACILITY_VCT)


def test_a_foreign_credential_verifies_through_an_agreement(world: RegistryWorld) -> None:
    partner = RegistryWorld.create("US")
    node = Verifier.trusting(world, partner)
    credential, holder = partner.issue(level="SECRET")
    verified = node.verify(bind(credential, holder, node))
    assert (verified.issuer_jurisdiction, verified.level) == ("US", "SECRET")
    assert verified.status_list_uri == partner.status_uri


def test_a_foreign_credential_is_refused_once_its_bundle_expired(world: RegistryWorld) -> None:
    partner = RegistryWorld.create("US")
    node = Verifier.trusting(world, partner)
    node.trust.update_bundle(world.bundle(version=2, expires_in=10 * DAY), NOW)
    credential, holder = partner.issue()
    later = NOW + DAY
    with refused(Reason.BUNDLE_EXPIRED):
        node.verify(bind(credential, holder, node, issued_at=later), now=later)


# -- time ------------------------------------------------------------------------------------------


def test_clock_skew_is_tolerated_for_nbf_but_never_for_exp(world: RegistryWorld, node: Verifier) -> None:
    holder = Holder()
    soon, _ = world.issue(holder, issued_at=NOW + DEFAULT_LEEWAY)
    node.verify(bind(soon, holder, node))
    ending, _ = world.issue(holder, issued_at=NOW - DAY, lifetime=DAY)
    with refused(Reason.EXPIRED):
        node.verify(bind(ending, holder, node))


def signed_at(credential: str, holder: Holder, node: Verifier, kb_issued_at: int) -> str:
    """A presentation to a fresh challenge whose key-binding JWT claims ``kb_issued_at``."""
    return present_credential(credential, holder, nonce=node.challenge(NOW), issued_at=kb_issued_at)


def test_a_key_binding_older_than_allowed_is_refused(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    node.verify(signed_at(credential, holder, node, NOW - DEFAULT_KB_MAX_AGE))
    with refused(Reason.KEY_BINDING_INVALID):
        node.verify(signed_at(credential, holder, node, NOW - DEFAULT_KB_MAX_AGE - 1))


def test_a_key_binding_from_the_future_is_refused(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    node.verify(signed_at(credential, holder, node, NOW + DEFAULT_LEEWAY))
    with refused(Reason.KEY_BINDING_INVALID):
        node.verify(signed_at(credential, holder, node, NOW + DEFAULT_LEEWAY + 1))


def test_an_expired_nonce_is_refused(world: RegistryWorld) -> None:
    node = Verifier.synced(world)
    node.nonces = MemoryNonceStore(ttl=60)
    credential, holder = world.issue()
    nonce = node.nonces.issue(NOW - 61)
    with refused(Reason.NONCE_EXPIRED):
        node.verify(present_credential(credential, holder, nonce=nonce))


# -- the clearance itself ----------------------------------------------------------------------------


def test_a_level_the_issuer_does_not_define_is_refused(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(level="COSMIC_TOP_SECRET")
    with refused(Reason.INVALID_CLAIM):
        node.verify(bind(credential, holder, node))


def test_a_category_the_issuer_does_not_define_is_refused(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(categories=("cyber-threat", "nuclear"))
    with refused(Reason.INVALID_CLAIM):
        node.verify(bind(credential, holder, node))


def test_a_registry_cannot_clear_people_for_another_jurisdiction(
    world: RegistryWorld, node: Verifier
) -> None:
    world.jurisdiction = "US"  # the JP registry's keys, a US clearance claim
    credential, holder = world.issue()
    with refused(Reason.INVALID_CLAIM):
        node.verify(bind(credential, holder, node))


def test_a_credential_without_an_issuer_is_refused(world: RegistryWorld, node: Verifier) -> None:
    holder = Holder()
    issued = issue({"typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}, {"sub": "x"}, {}, world.issuing)
    with refused(Reason.MISSING_CLAIM):
        node.verify(bind(issued.serialize(), holder, node))


def test_a_token_of_another_type_is_not_a_credential(world: RegistryWorld, node: Verifier) -> None:
    holder = Holder()
    token = encode_compact({"typ": "JWT", "kid": world.issuing.kid}, {"iss": world.issuer}, world.issuing)
    with refused(Reason.WRONG_TYPE):
        node.verify(bind(token + "~", holder, node))


def test_the_key_binding_must_cover_the_presented_disclosures_exactly(
    world: RegistryWorld, node: Verifier
) -> None:
    credential, holder = world.issue()
    presented = bind(credential, holder, node, disclose=("given_name",))
    parts = split(presented)
    fewer = parts.jwt + "~"
    with refused(Reason.SD_HASH_MISMATCH):
        node.verify(fewer + (parts.key_binding or ""))
    kb = make_key_binding(fewer, holder.key, audience="node-a", nonce=node.challenge(), issued_at=NOW)
    assert node.verify(fewer + kb).disclosed == {}


# -- status --------------------------------------------------------------------------------------------


def test_without_a_status_list_the_node_fails_closed(world: RegistryWorld) -> None:
    trust = TrustStore(world.root.public)
    trust.update_bundle(world.bundle(), NOW)
    node = Verifier(trust)
    credential, holder = world.issue()
    with refused(Reason.STATUS_LIST_MISSING):
        node.verify(bind(credential, holder, node))


def test_a_status_list_older_than_the_level_allows_is_stale(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(level="TOP_SECRET")
    later = NOW + 3601
    with refused(Reason.STATUS_LIST_STALE):
        node.verify(bind(credential, holder, node, issued_at=later), now=later)
    relaxed, _ = world.issue(holder, level="CONFIDENTIAL")
    assert node.verify(bind(relaxed, holder, node, issued_at=later), now=later).status_list_age == 3601


def test_an_item_level_can_demand_a_fresher_status_list(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(level="CONFIDENTIAL")
    with refused(Reason.STATUS_LIST_STALE):
        node.verify(bind(credential, holder, node, issued_at=NOW + 11), now=NOW + 11, status_max_age=10)


def test_an_expired_status_list_is_not_relied_on(world: RegistryWorld) -> None:
    trust = TrustStore(world.root.public)
    trust.update_bundle(world.bundle(expires_in=10 * DAY), NOW)
    trust.update_status_list(world.status_token(expires_in=60), NOW)
    node = Verifier(trust)
    credential, holder = world.issue(level="CONFIDENTIAL")
    with refused(Reason.STATUS_LIST_EXPIRED):
        node.verify(bind(credential, holder, node, issued_at=NOW + 60), now=NOW + 60)


def test_a_status_value_the_node_does_not_know_is_refused(world: RegistryWorld) -> None:
    credential, holder = world.issue(index=5)
    world.status_list.set(5, 3)
    node = Verifier.synced(world)
    with refused(Reason.STATUS_UNKNOWN):
        node.verify(bind(credential, holder, node))


def test_a_credential_pointing_at_a_list_of_another_registry_is_refused(world: RegistryWorld) -> None:
    partner = RegistryWorld.create("US")
    node = Verifier.trusting(world, partner)
    world.status_uri = partner.status_uri  # a JP credential whose status is "kept" by the US
    credential, holder = world.issue()
    with refused(Reason.UNTRUSTED_ISSUER):
        node.verify(bind(credential, holder, node))


def test_a_larger_list_of_fewer_bits_works_the_same(world: RegistryWorld) -> None:
    world.status_list = StatusList(2, 1 << 20)
    node = Verifier.synced(world)
    credential, holder = world.issue(index=(1 << 20) - 1)
    assert node.verify(bind(credential, holder, node)).credential.status.idx == (1 << 20) - 1


# -- policy and nonce store ------------------------------------------------------------------------------


def test_staleness_policy_treats_an_unknown_level_as_strictly_as_its_strictest() -> None:
    policy = StalenessPolicy({"SECRET": 600, "CONFIDENTIAL": 6000})
    assert policy.max_age("SECRET") == 600
    assert policy.max_age("UNHEARD_OF") == 600
    assert policy.to_json() == {"SECRET": 600, "CONFIDENTIAL": 6000}
    assert StalenessPolicy().max_age("TOP_SECRET") == 3600


@pytest.mark.parametrize("ages", [{}, {"SECRET": 0}, {"SECRET": -5}, {"SECRET": 1.5}])
def test_staleness_policy_refuses_ages_that_are_not_positive_seconds(ages: dict[str, object]) -> None:
    with refused(Reason.MALFORMED):
        StalenessPolicy(ages)  # type: ignore[arg-type]


def test_nonces_are_single_use_and_only_ours() -> None:
    nonces = MemoryNonceStore()
    first, second = nonces.issue(NOW), nonces.issue(NOW)
    assert first != second
    nonces.consume(first, NOW)
    with refused(Reason.NONCE_REPLAYED):
        nonces.consume(first, NOW)
    with refused(Reason.NONCE_UNKNOWN):
        nonces.consume("made-up", NOW)
    nonces.consume(second, NOW + 1)


def test_an_expired_nonce_is_used_up_by_the_attempt() -> None:
    nonces = MemoryNonceStore(ttl=10)
    nonce = nonces.issue(NOW)
    with refused(Reason.NONCE_EXPIRED):
        nonces.consume(nonce, NOW + 10)
    with refused(Reason.NONCE_REPLAYED):
        nonces.consume(nonce, NOW + 10)


def test_pruning_old_nonces_never_lets_a_replay_through() -> None:
    nonces = MemoryNonceStore(ttl=10)
    used = nonces.issue(NOW)
    nonces.consume(used, NOW)
    for _ in range(5000):
        nonces.issue(NOW + 100)
    # Once pruned, the used nonce is no longer remembered as used, nor as issued.
    with refused(Reason.NONCE_UNKNOWN):
        nonces.consume(used, NOW + 100)


def test_a_flood_of_challenges_forgets_the_oldest_and_never_accepts_it() -> None:
    nonces = MemoryNonceStore(ttl=300, max_outstanding=100)
    first = nonces.issue(NOW)
    flood = [nonces.issue(NOW) for _ in range(150)]

    assert len(nonces) == 100
    with refused(Reason.NONCE_UNKNOWN):
        nonces.consume(first, NOW)
    nonces.consume(flood[-1], NOW)


def test_expired_nonces_are_dropped_as_new_ones_are_issued() -> None:
    nonces = MemoryNonceStore(ttl=10)
    used = nonces.issue(NOW)
    nonces.consume(used, NOW)
    for _ in range(50):
        nonces.issue(NOW)

    fresh = nonces.issue(NOW + 11)

    assert len(nonces) == 1
    nonces.consume(fresh, NOW + 11)


@pytest.mark.parametrize(("ttl", "capacity"), [(0, 10), (10, 0)])
def test_a_nonce_store_needs_a_positive_ttl_and_capacity(ttl: int, capacity: int) -> None:
    with refused(Reason.MALFORMED):
        MemoryNonceStore(ttl=ttl, max_outstanding=capacity)


# -- batches -------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_a_batch_gives_each_presentation_what_verifying_it_alone_would(threads: int) -> None:
    world = RegistryWorld.create("JP")
    revoked, revoked_holder = world.issue(index=41)
    world.status_list.set(41, 1)
    node = Verifier.synced(world)
    batch: list[str] = []
    expected: list[Reason | None] = []
    for n in range(40):
        credential, holder = world.issue(index=100 + n)
        presentation = bind(credential, holder, node)
        if n % 10 == 3:  # tampered: the key-binding signature does not verify
            presentation = presentation[:-3] + ("AAA" if presentation[-3:] != "AAA" else "BBB")
            expected.append(Reason.KEY_BINDING_INVALID)
        elif n % 10 == 7:  # addressed to another node
            presentation = present_credential(credential, holder, nonce=node.challenge(), audience="node-b")
            expected.append(Reason.AUDIENCE_MISMATCH)
        else:
            expected.append(None)
        batch.append(presentation)
    batch.append(bind(revoked, revoked_holder, node))
    expected.append(Reason.REVOKED)
    batch.append("not a presentation")
    expected.append(Reason.MALFORMED)

    results = node.verify_batch(batch, threads=threads)

    assert len(results) == len(batch)
    for result, reason in zip(results, expected, strict=True):
        if reason is None:
            assert isinstance(result, VerifiedPresentation)
        else:
            assert isinstance(result, VerificationError)
            assert result.reason == reason


def test_in_a_batch_the_first_presentation_of_a_nonce_wins_on_any_thread() -> None:
    world = RegistryWorld.create("JP")
    node = Verifier.synced(world)
    nonce = node.challenge()
    batch = []
    for _ in range(32):
        credential, holder = world.issue()
        batch.append(present_credential(credential, holder, nonce=nonce))

    results = node.verify_batch(batch, threads=4)

    assert isinstance(results[0], VerifiedPresentation)
    assert all(isinstance(r, VerificationError) and r.reason == Reason.NONCE_REPLAYED for r in results[1:])
