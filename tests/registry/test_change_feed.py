"""Replicas hear of each other's commits: LISTEN/NOTIFY on PostgreSQL, a cheap version look on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from clearance.statusdelta import parse_status_delta
from clearance.statuslist import Status
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api import server
from registry.api.server import RunningRegistry
from registry.publication.changes import PollingChangeFeed, PostgresChangeFeed
from registry.publication.hub import BACKSTOP_SECONDS
from tests.registry.conftest import HEARTBEAT, Registry
from tests.registry.test_publication import WATCH_DEADLINE, Subscription, current, holding

pytestmark = pytest.mark.database


@pytest.fixture
def quiet_replica(registry: Registry) -> Iterator[RunningRegistry]:
    """A second replica whose hub would not look on its own for an hour where changes are announced."""
    postgres = registry.ctx.db.dialect == "postgresql"
    running = server.start(
        server.open_context(registry.directory, clock=registry.clock),
        "127.0.0.1:0",
        insecure=True,
        heartbeat=HEARTBEAT,
        freshness_check=3600,
        poll_interval=3600 if postgres else 0.1,
    )
    yield running
    running.stop(grace=0.5)


def test_a_revocation_through_one_replica_reaches_the_streams_of_another(
    registry: Registry, quiet_replica: RunningRegistry
) -> None:
    hub = quiet_replica.hub
    if registry.ctx.db.dialect == "postgresql":
        assert isinstance(hub.feed, PostgresChangeFeed)
        assert hub.poll_interval == 3600 > BACKSTOP_SECONDS  # only a notification can wake it in time
    else:
        assert isinstance(hub.feed, PollingChangeFeed)
    issued = registry.issue(registry.cleared_person().assessment.id)
    version, uri, seq = current(registry)
    channel = grpc.insecure_channel(f"127.0.0.1:{quiet_replica.port}")
    subscription = Subscription(
        rpc.PublicationServiceStub(channel).Watch(holding(version, uri, seq), timeout=WATCH_DEADLINE)
    )
    try:
        assert subscription.next()[0] == "heartbeat"  # caught up

        registry.adjudicator.credentials.RevokeCredential(
            pb.RevokeCredentialRequest(id=issued.id, reason="left")
        )

        kind, token = subscription.next_update()
        assert kind == "status_delta"
        assert parse_status_delta(token).updates == ((issued.record.status_index, Status.REVOKED),)
        if isinstance(hub.feed, PostgresChangeFeed):
            assert hub.feed.received >= 1
    finally:
        subscription.close()
        channel.close()
