"""What ``node status`` says: trust, freshness against the policy, and the problems pending."""

from __future__ import annotations

from clearance.trust import TrustStore
from clearance.verify import StalenessPolicy
from node.status import describe
from node.store import Problem
from node.sync import SyncStatus
from tests.factories import DAY, NOW, RegistryWorld, Verifier

POLICY = StalenessPolicy({"TOP_SECRET": 600, "SECRET": 3600, "CONFIDENTIAL": 86400})


def test_a_fresh_connected_node_has_no_problems() -> None:
    world = RegistryWorld.create("JP")
    trust = TrustStore(world.root.public)
    trust.update_bundle(world.bundle(expires_in=7 * DAY), NOW)
    trust.update_status_list(world.status_token(), NOW)

    status = describe(trust, SyncStatus(connected=True, last_sync=NOW), [], POLICY, NOW + 60)

    assert status.home is not None
    assert (status.home.jurisdiction, status.home.bundle_version) == ("JP", 1)
    assert status.home.root_fingerprint == world.root.kid
    assert [(s.uri, s.age_seconds, s.sequence) for s in status.status_lists] == [(world.status_uri, 60, 1)]
    assert status.problems == []
    assert status.staleness_policy == POLICY.to_json()


def test_stale_lists_expiring_bundles_outages_and_refusals_are_pending_problems() -> None:
    trust = Verifier.synced(RegistryWorld.create("JP")).trust
    refusal = Problem(
        NOW + 3000, "push trust_bundle", "rollback", "trust bundle v1 is older than the v2 held"
    )
    old = Problem(NOW - 2 * DAY, "push status_delta", "bad_signature", "long ago")

    status = describe(trust, SyncStatus(connected=False, last_sync=NOW), [refusal, old], POLICY, NOW + 3601)

    text = "\n".join(status.problems)
    assert "too stale for SECRET, TOP_SECRET" in text
    assert "expires at" in text  # the bundle lives one day: less than a day left
    assert "not connected to the registry since" in text
    assert "push trust_bundle: rollback" in text
    assert "long ago" not in text  # history, not a pending problem


def test_an_expired_bundle_is_a_freeze() -> None:
    trust = Verifier.synced(RegistryWorld.create("JP")).trust

    status = describe(trust, SyncStatus(connected=True), [], POLICY, NOW + DAY)

    assert any("expired" in p and "refusing to decide" in p for p in status.problems)
