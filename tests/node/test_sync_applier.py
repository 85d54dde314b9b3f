"""What the sync accepts and what it refuses: rollback, freeze and hostile push messages keep the good state."""

from __future__ import annotations

import json

import pytest

from clearance.statuslist import MAX_TOKEN_BYTES
from clearance.v1 import registry_pb2 as pb
from tests.factories import DAY, NOW, RegistryWorld, compact_jws
from tests.node.conftest import OfflineNode as Node


def problems(node: Node) -> list[tuple[str, str]]:
    return [(p.source, p.reason) for p in node.store.problems()]


def snapshot(node: Node) -> tuple[int, int, bytes]:
    held = node.trust.status_lists[node.world.status_uri]
    assert node.trust.home is not None
    return node.trust.home.version, held.seq, held.status_list.to_bytes()


def test_an_older_bundle_is_refused_as_rollback_and_reported(node: Node) -> None:
    old = node.world.bundle(version=1)
    node.world.version = 3
    assert node.syncer.receive("trust_bundle", node.world.bundle())
    before = snapshot(node)

    assert node.syncer.receive("trust_bundle", old) is None

    assert snapshot(node) == before
    assert problems(node)[0] == ("push trust_bundle", "rollback")


def test_an_expired_bundle_is_refused_as_freeze_and_reported(node: Node) -> None:
    node.world.version = 2
    expired = node.world.bundle(issued_at=NOW - 2 * DAY, expires_in=DAY)
    before = snapshot(node)

    assert node.syncer.receive("trust_bundle", expired, source="poll") is None

    assert snapshot(node) == before
    assert problems(node)[0] == ("poll trust_bundle", "bundle_expired")


def test_an_older_status_list_is_refused(node: Node) -> None:
    node.syncer.receive("status_delta", node.delta(1, [(10, 1)], at=NOW + 5))

    assert node.syncer.receive("status_list", node.world.status_token(seq=1)) is None

    assert node.trust.status_lists[node.world.status_uri].status_of(10) == 1
    assert problems(node)[0][1] == "rollback"


HOSTILE: dict[str, tuple[str, str]] = {
    "garbage": ("status_delta", "not a token"),
    "alg none": (
        "trust_bundle",
        compact_jws({"alg": "none", "typ": "clearance-bundle+jwt"}, {"version": 99}),
    ),
    "wrong type": ("status_list", compact_jws({"alg": "EdDSA", "typ": "JWT"}, {"sub": "x"}, b"\0" * 64)),
    "unknown kind": ("credential", "x.y.z"),
    "oversized": ("status_list", "a" * (MAX_TOKEN_BYTES + 1)),
    "bad rotation": ("root_rotation", '{"payload": "e30", "signatures": []}'),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_document_is_refused_without_losing_the_good_state(node: Node, case: str) -> None:
    kind, token = HOSTILE[case]
    before = snapshot(node)

    assert node.syncer.receive(kind, token) is None

    assert snapshot(node) == before
    assert len(node.store.documents()) == 2
    assert problems(node)[0][1] in {"malformed", "too_large", "wrong_type", "algorithm_not_allowed"}


def test_a_push_message_carrying_nothing_is_refused(node: Node) -> None:
    node.syncer.handle(pb.WatchResponse())

    assert problems(node)[0] == ("push message", "malformed")


def test_a_valid_push_after_a_hostile_one_still_applies(node: Node) -> None:
    node.syncer.handle(pb.WatchResponse(status_delta="garbage"))
    node.syncer.handle(pb.WatchResponse(status_delta=node.delta(1, [(30, 2)])))

    held = node.trust.status_lists[node.world.status_uri]
    assert (held.seq, held.status_of(30)) == (2, 2)


def test_a_delta_on_another_base_asks_for_the_full_list(node: Node) -> None:
    # The registry is not reachable in this test, so the repair fails and is reported.
    skipped = node.delta(5, [(40, 1)])

    assert node.syncer.receive("status_delta", skipped) is None

    assert problems(node)[0] == ("push status_delta", "unreachable")
    assert node.trust.status_lists[node.world.status_uri].seq == 1


def test_an_identical_document_changes_nothing(node: Node) -> None:
    applied = node.syncer.receive("trust_bundle", node.world.bundle())

    assert applied is not None
    assert not applied.changed
    assert len(node.store.documents()) == 2
    assert node.store.problems() == []


def test_backoff_grows_to_its_cap_with_jitter(node: Node) -> None:
    delays = [node.syncer.backoff(n) for n in range(1, 12)]

    assert delays[0] < delays[3] < delays[6]
    assert max(delays) <= 60
    assert min(delays) > 0


def test_a_root_rotation_is_followed_and_the_new_root_bundle_accepted(node: Node) -> None:
    old_root = node.world.root.public
    rotation = node.world.rotate_root()
    node.world.version = 2
    bundle = node.world.bundle()

    assert node.syncer.receive("trust_bundle", bundle) is None  # unreachable registry: no history to walk
    assert node.syncer.receive("root_rotation", json.dumps(rotation.document.to_json()))
    assert node.syncer.receive("trust_bundle", bundle)
    again = node.syncer.receive("root_rotation", json.dumps(rotation.document.to_json()))

    assert again is not None
    assert not again.changed  # already followed
    assert node.trust.root == node.world.root.public
    assert node.trust.previous_roots == [old_root]
    rebuilt = node.rebuilt(old_root)
    assert rebuilt.home is not None
    assert rebuilt.home.version == 2  # the rotation is replayed from the pinned root


def test_a_partner_bundle_and_list_are_kept_and_rebuilt(node: Node) -> None:
    partner = RegistryWorld.create("US")
    agreement = node.world.agree_with(partner).to_json()
    node.world.agreements.append(agreement)
    partner.agreements.append(agreement)
    node.world.version = 2
    assert node.syncer.receive("trust_bundle", node.world.bundle())

    assert node.syncer.receive("foreign_bundle", partner.bundle())
    assert node.syncer.receive("status_list", partner.status_token())

    rebuilt = node.rebuilt()
    assert set(rebuilt.foreign) == {"US"}
    assert partner.status_uri in rebuilt.status_lists
    assert rebuilt.foreign["US"].agreement.id == "JP-US-1"


def test_a_partner_bundle_without_an_agreement_is_refused(node: Node) -> None:
    stranger = RegistryWorld.create("US")

    assert node.syncer.receive("foreign_bundle", stranger.bundle()) is None

    assert problems(node)[0] == ("push foreign_bundle", "untrusted_issuer")
    assert node.trust.foreign == {}
