"""Every node reconnecting at once costs the registry one full list read, and each node only what it lacks."""

from __future__ import annotations

import pytest

from clearance.statusdelta import parse_status_delta
from clearance.statuslist import parse_status_list_token
from clearance.v1 import registry_pb2 as pb
from tests.registry.conftest import Registry
from tests.registry.test_publication import WATCH_DEADLINE, Subscription, current, holding

pytestmark = pytest.mark.database

NODES = 60


def test_a_reconnect_storm_reads_each_full_list_once_and_resumes_each_node_where_it_was(
    registry: Registry,
) -> None:
    issued = registry.issue(registry.cleared_person().assessment.id)
    version, uri, seq = current(registry)
    registry.adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued.id, reason="left"))
    hub = registry.running.hub
    reads_before = hub.full_reads

    # Half the nodes come back with nothing (a new or wiped node), half with the list before the revocation.
    fresh = [
        Subscription(registry.public.publication.Watch(pb.WatchRequest(), timeout=WATCH_DEADLINE))
        for _ in range(NODES // 2)
    ]
    resuming = [
        Subscription(registry.public.publication.Watch(holding(version, uri, seq), timeout=WATCH_DEADLINE))
        for _ in range(NODES // 2)
    ]
    try:
        for subscription in fresh:
            lists = [token for kind, token in subscription.until_idle() if kind == "status_list"]
            assert [parse_status_list_token(token).seq for token in lists] == [seq + 1]
        for subscription in resuming:
            updates = subscription.until_idle()
            assert [kind for kind, _ in updates] == ["status_delta"], "only what it lacks"
            assert parse_status_delta(updates[0][1]).base_seq == seq
        assert hub.full_reads - reads_before == 1, "one read of the full list for every node that needed it"
    finally:
        for subscription in fresh + resuming:
            subscription.close()
