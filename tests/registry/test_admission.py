"""No caller can hold the registry's workers: stalled calls, full budgets, strangers' streams.

The registry here runs with small budgets (four worker threads, a handful of
anonymous places) so that a test can fill them; the mechanism is the one every
registry runs with.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from clearance.channel import open_channel
from clearance.statusdelta import parse_status_delta
from clearance.statuslist import Status
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api import server
from registry.api.admission import ServingLimits
from registry.setup import init_registry
from tests.registry.conftest import HEARTBEAT, FakeClock, Principal, Registry
from tests.registry.registry_process import wait_until
from tests.registry.test_publication import Subscription, current, holding

pytestmark = pytest.mark.database

LIMITS = ServingLimits(
    workers=4,
    authenticated_calls=64,
    anonymous_calls=8,
    subscriber_streams=64,
    anonymous_streams=1_500,
    anonymous_body_seconds=1.0,
)


def limited_registry(
    tmp_path: Path, database_url: str, *, heartbeat: float = HEARTBEAT, limits: ServingLimits = LIMITS
) -> Registry:
    clock = FakeClock()
    directory = tmp_path / "registry"
    ctx, admin = init_registry(directory, jurisdiction="JP", database_url=database_url, clock=clock)
    running = server.start(
        ctx, "127.0.0.1:0", insecure=True, heartbeat=heartbeat, freshness_check=3600, limits=limits
    )
    return Registry(ctx=ctx, running=running, clock=clock, directory=directory, first_admin=admin)


@pytest.fixture
def limited(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    registry = limited_registry(tmp_path, database_url)
    yield registry
    registry.stop()


class StalledCalls:
    """Calls that send their headers and never their request: a client whose body never comes."""

    def __init__(self, endpoint: str, method: str, count: int, *, token: str | None = None) -> None:
        self.release = threading.Event()
        self.channel = grpc.insecure_channel(endpoint)
        call: grpc.StreamUnaryMultiCallable[bytes, bytes] = self.channel.stream_unary(method)
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.calls = [call.future(self._never(), timeout=60, metadata=metadata) for _ in range(count)]

    def _never(self) -> Iterator[bytes]:
        self.release.wait()
        yield from ()

    def codes(self) -> collections.Counter[str]:
        """How each call ended (waits for all)."""
        ended: collections.Counter[str] = collections.Counter()
        for call in self.calls:
            try:
                call.result(timeout=60)
                ended["OK"] += 1
            except grpc.RpcError as exc:
                ended[exc.code().name] += 1
        return ended

    def close(self) -> None:
        self.release.set()
        self.channel.close()


def token_of(principal: Principal, registry: Registry) -> str:
    from clearance.access import sign_access_token

    return sign_access_token(
        principal.key, principal=principal.id, audience=registry.audience, now=registry.clock()
    )


def test_calls_that_never_send_their_request_hold_no_worker_thread(limited: Registry) -> None:
    adjudicator = limited.adjudicator
    stalled = StalledCalls(
        limited.endpoint,
        "/clearance.v1.CredentialService/ListCredentials",
        3 * LIMITS.workers,
        token=token_of(adjudicator, limited),
    )
    try:
        wait_until(
            lambda: limited.running.load()["authenticated"] == 3 * LIMITS.workers,
            what="every stalled call admitted",
        )
        # Three stalled calls per worker thread, and every worker is still free.
        assert limited.running.executor is not None
        free = [limited.running.executor.submit(lambda: "free") for _ in range(LIMITS.workers)]
        assert [job.result(timeout=10) for job in free] == ["free"] * LIMITS.workers
        listed = adjudicator.credentials.ListCredentials(pb.ListCredentialsRequest(), timeout=10)
        assert list(listed.credentials) == []
    finally:
        stalled.release.set()
    # Their clients gave up without a request: refused, and nothing was run for them.
    assert stalled.codes() == {"INVALID_ARGUMENT": 3 * LIMITS.workers}
    stalled.close()
    wait_until(lambda: limited.running.load()["authenticated"] == 0, what="their places given back")


def test_anonymous_callers_that_stall_are_bounded_then_timed_out_while_staff_are_served(
    limited: Registry,
) -> None:
    extra = 5
    stalled = StalledCalls(
        limited.endpoint, "/clearance.v1.PublicationService/GetStatusList", LIMITS.anonymous_calls + extra
    )
    try:
        wait_until(
            lambda: limited.running.load()["anonymous"] == LIMITS.anonymous_calls,
            what="the anonymous places filled",
        )
        organizations = limited.admin.organizations.ListOrganizations(
            pb.ListOrganizationsRequest(), timeout=10
        )
        assert list(organizations.organizations) == []
        # The server, not the client, ends them: the client would wait a minute.
        assert stalled.codes() == {
            "DEADLINE_EXCEEDED": LIMITS.anonymous_calls,
            "RESOURCE_EXHAUSTED": extra,
        }
    finally:
        stalled.close()
    wait_until(lambda: limited.running.load()["anonymous"] == 0, what="their places given back")
    assert limited.public.publication.GetTrustBundle(pb.GetTrustBundleRequest(), timeout=10).bundle


def test_an_unauthenticated_call_to_a_staff_method_is_refused_before_its_request_is_read(
    limited: Registry,
) -> None:
    stalled = StalledCalls(limited.endpoint, "/clearance.v1.CredentialService/RevokeCredential", 3)
    try:
        assert stalled.codes() == {"UNAUTHENTICATED": 3}
    finally:
        stalled.close()
    assert limited.running.load()["authenticated"] == 0, "an unauthenticated call is never admitted"


def test_strangers_holding_thousands_of_streams_starve_neither_staff_nor_enrolled_nodes(
    tmp_path: Path, database_url: str
) -> None:
    # Here the strangers send their requests; on a busy machine they must not be cut for slowness.
    patient = dataclasses.replace(LIMITS, anonymous_body_seconds=120.0)
    registry = limited_registry(tmp_path, database_url, heartbeat=15.0, limits=patient)
    strangers: list[grpc.Channel] = []
    try:
        organization = registry.new_organization()
        nodes = [registry.new_node(organization.id) for _ in range(4)]
        version, uri, seq = current(registry)
        # 2,000 anonymous streams from 4 connections: 1,500 are held (no thread each), the rest refused.
        for _ in range(4):  # each its own connection (a connection carries 1,024 streams at most)
            strangers.append(open_channel(registry.endpoint, insecure=True, own_connection=True))
        calls: list[Any] = [  # the calls' done() and code() are not in the stubs' types
            rpc.PublicationServiceStub(channel).Watch(pb.WatchRequest(), timeout=120)
            for channel in strangers
            for _ in range(500)
        ]
        wait_until(
            lambda: registry.running.load()["anonymous_streams"] == LIMITS.anonymous_streams,
            seconds=60,
            what=f"the strangers' streams admitted ({registry.running.load()})",
        )
        assert registry.running.load()["threads"] < 100
        subscriptions = [
            Subscription(node.publication.Watch(holding(version, uri, seq), timeout=120)) for node in nodes
        ]
        for subscription in subscriptions:
            assert subscription.next()[0] == "heartbeat"  # caught up: they hold what is published

        issued = registry.issue(registry.cleared_person(organization=organization).assessment.id)
        registry.adjudicator.credentials.RevokeCredential(
            pb.RevokeCredentialRequest(id=issued.id, reason="left"), timeout=10
        )

        revoked = (issued.record.status_index, Status.REVOKED)
        for subscription in subscriptions:
            kind, token = subscription.next_update()
            while kind != "status_delta" or revoked not in parse_status_delta(token).updates:
                kind, token = subscription.next_update()
            subscription.close()

        def refused() -> list[grpc.StatusCode]:
            return [call.code() for call in calls if call.done()]

        # Refused before their request is read: the client sees the refusal, or (when the
        # refusal overtakes its own request on the wire) the stream reset that follows it.
        wait_until(lambda: len(refused()) == 2_000 - LIMITS.anonymous_streams, what="the rest refused")
        assert set(refused()) <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED}
        assert registry.running.load()["anonymous_streams"] == LIMITS.anonymous_streams
    finally:
        for channel in strangers:
            channel.close()
        registry.stop()
