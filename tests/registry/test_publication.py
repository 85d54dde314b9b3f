"""What the registry publishes: the trust bundle and status lists, served to anyone and pushed to subscribers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from sqlalchemy import Connection, event

from clearance.bundle import TrustBundle
from clearance.statusdelta import parse_status_delta
from clearance.statuslist import Status, parse_status_list_token
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from registry.api import server
from registry.api.server import RunningRegistry
from registry.publication import publisher
from tests.registry.conftest import DAY, HEARTBEAT, Client, Registry, fails_with, refused_naming

pytestmark = pytest.mark.database

WATCH_DEADLINE = 20.0


class Subscription:
    """A Watch stream as a node holds it: read what arrives, heartbeats set apart."""

    def __init__(self, call: Iterator[pb.WatchResponse]) -> None:
        self.call = call

    def next(self) -> tuple[str, str]:
        message = next(self.call)
        kind = message.WhichOneof("update")
        assert kind is not None
        return kind, "" if kind == "heartbeat" else getattr(message, kind)

    def until_idle(self) -> list[tuple[str, str]]:
        """Everything sent before the stream went idle (its next heartbeat)."""
        updates = []
        while (update := self.next())[0] != "heartbeat":
            updates.append(update)
        return updates

    def next_update(self) -> tuple[str, str]:
        """The next update that is not a heartbeat."""
        while (update := self.next())[0] == "heartbeat":
            pass
        return update

    def close(self) -> None:
        self.call.cancel()  # type: ignore[attr-defined]


Subscribe = Callable[..., Subscription]


@pytest.fixture
def subscribe(registry: Registry) -> Iterator[Subscribe]:
    subscriptions: list[Subscription] = []

    def subscribe(request: pb.WatchRequest | None = None) -> Subscription:
        stub = registry.public.publication
        subscription = Subscription(stub.Watch(request or pb.WatchRequest(), timeout=WATCH_DEADLINE))
        subscriptions.append(subscription)
        return subscription

    yield subscribe
    for subscription in subscriptions:
        subscription.close()


def current(registry: Registry) -> tuple[int, str, int]:
    """(bundle version, list uri, list seq) as published now."""
    token = registry.public.publication.GetTrustBundle(pb.GetTrustBundleRequest()).bundle
    bundle, _ = TrustBundle.parse(token)
    [location] = bundle.status_lists
    listed = registry.public.publication.GetStatusList(pb.GetStatusListRequest(uri=location.uri)).token
    return bundle.version, location.uri, parse_status_list_token(listed).seq


def holding(version: int, uri: str, seq: int) -> pb.WatchRequest:
    return pb.WatchRequest(bundle_version=version, status_lists=[pb.HeldStatusList(uri=uri, sequence=seq)])


def test_the_bundle_is_signed_by_the_root_and_lists_the_issuing_key_and_status_list(
    registry: Registry,
) -> None:
    assert registry.ctx.keys.root is not None
    token = registry.public.publication.GetTrustBundle(pb.GetTrustBundleRequest()).bundle

    bundle = TrustBundle.verify(token, registry.ctx.keys.root.public)

    assert (bundle.jurisdiction, bundle.issuer) == ("JP", registry.audience)
    assert [k.key.thumbprint for k in bundle.issuing_keys] == [registry.ctx.keys.issuing_key.kid]
    assert [s.uri for s in bundle.status_lists] == [registry.ctx.config.status_list_uri(1)]
    assert bundle.expires_at == registry.clock() + 7 * DAY
    jwks = json.loads(registry.public.publication.GetJwks(pb.GetJwksRequest()).jwks_json)
    assert [k["kid"] for k in jwks["keys"]] == [registry.ctx.keys.issuing_key.kid]
    history = registry.public.publication.GetRootHistory(pb.GetRootHistoryRequest())
    assert list(history.rotations) == []
    assert json.loads(history.root_jwk)["x"] == registry.ctx.keys.root.public.jwk["x"]


def test_a_status_list_is_served_by_its_uri(registry: Registry) -> None:
    publications = registry.public.publication

    refused_naming("uri", lambda: publications.GetStatusList(pb.GetStatusListRequest()))
    fails_with(
        grpc.StatusCode.NOT_FOUND,
        lambda: publications.GetStatusList(
            pb.GetStatusListRequest(uri="https://elsewhere.example/statuslists/1")
        ),
    )
    fails_with(
        grpc.StatusCode.NOT_FOUND,
        lambda: publications.GetTrustBundle(pb.GetTrustBundleRequest(jurisdiction="US")),
    )


def test_a_new_subscriber_first_receives_the_bundle_and_the_full_lists(
    registry: Registry, subscribe: Subscribe
) -> None:
    issued = registry.issue(registry.cleared_person().assessment.id)
    registry.adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued.id, reason="left"))
    version, uri, seq = current(registry)

    updates = subscribe().until_idle()

    assert [kind for kind, _ in updates] == ["trust_bundle", "status_list"]
    assert TrustBundle.parse(updates[0][1])[0].version == version
    listed = parse_status_list_token(updates[1][1])
    assert (listed.uri, listed.seq) == (uri, seq)
    assert listed.status_of(issued.record.status_index) == Status.REVOKED


def test_an_up_to_date_subscriber_receives_only_heartbeats_until_something_changes(
    registry: Registry,
    subscribe: Subscribe,
) -> None:
    subscription = subscribe(holding(*current(registry)))

    assert [subscription.next()[0] for _ in range(2)] == ["heartbeat", "heartbeat"]


def test_a_revocation_reaches_an_up_to_date_subscriber_as_one_delta(
    registry: Registry, subscribe: Subscribe
) -> None:
    issued = registry.issue(registry.cleared_person().assessment.id)
    version, uri, seq = current(registry)
    verifier = registry.verifier()
    subscription = subscribe(holding(version, uri, seq))
    assert subscription.next()[0] == "heartbeat"

    registry.adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued.id, reason="left"))

    kind, token = subscription.next_update()
    assert kind == "status_delta"
    delta = parse_status_delta(token)
    assert (delta.uri, delta.base_seq, delta.seq) == (uri, seq, seq + 1)
    assert delta.updates == ((issued.record.status_index, Status.REVOKED),)
    applied = verifier.trust.apply_status_delta(token, registry.clock())
    assert applied.status_of(issued.record.status_index) == Status.REVOKED
    assert subscription.until_idle() == [], "nothing else was sent"


class CountingListener:
    """A publication listener (as the hub is one) that counts how often it is told."""

    def __init__(self) -> None:
        self.told = 0

    def publications_changed(self) -> None:
        self.told += 1


def test_listeners_are_told_once_of_each_committed_change_to_what_is_published(registry: Registry) -> None:
    listener = CountingListener()
    issued = registry.issue(registry.cleared_person().assessment.id)
    registry.ctx.listeners.append(listener)

    registry.new_organization()  # nothing published changes
    assert listener.told == 0
    with registry.database_fails_at("INSERT INTO audit_events"):  # the status change rolls back
        fails_with(
            grpc.StatusCode.UNAVAILABLE,
            lambda: registry.adjudicator.credentials.RevokeCredential(
                pb.RevokeCredentialRequest(id=issued.id, reason="left")
            ),
        )
    assert listener.told == 0
    registry.adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued.id, reason="left"))
    assert listener.told == 1


def test_a_subscriber_behind_by_a_few_changes_receives_just_those_deltas(
    registry: Registry, subscribe: Subscribe
) -> None:
    issued = registry.issue(registry.cleared_person().assessment.id)
    version, uri, seq = current(registry)
    credentials = registry.adjudicator.credentials
    credentials.SuspendCredential(pb.SuspendCredentialRequest(id=issued.id, reason="inquiry"))
    credentials.ReinstateCredential(pb.ReinstateCredentialRequest(id=issued.id, reason="inquiry closed"))

    updates = subscribe(holding(version, uri, seq)).until_idle()

    deltas = [parse_status_delta(token) for kind, token in updates if kind == "status_delta"]
    assert [kind for kind, _ in updates] == ["status_delta", "status_delta"]
    assert [(d.base_seq, d.seq) for d in deltas] == [(seq, seq + 1), (seq + 1, seq + 2)]
    assert [d.updates for d in deltas] == [
        ((issued.record.status_index, Status.SUSPENDED),),
        ((issued.record.status_index, Status.VALID),),
    ]


def test_a_renewed_bundle_and_an_unchanged_list_are_pushed_when_they_near_expiry(
    registry: Registry,
    subscribe: Subscribe,
) -> None:
    version, uri, seq = current(registry)
    subscription = subscribe(holding(version, uri, seq))
    assert subscription.next()[0] == "heartbeat"
    registry.clock.advance(4 * DAY)  # past half the bundle's 7-day life

    assert publisher.ensure_fresh(registry.ctx)

    updates = [subscription.next_update(), subscription.next_update()]
    kinds = dict(updates)
    assert TrustBundle.parse(kinds["trust_bundle"])[0].version == version + 1
    renewal = parse_status_delta(kinds["status_delta"])
    assert (renewal.base_seq, renewal.updates, renewal.issued_at) == (seq, (), registry.clock())


class Replica(Client):
    """Another registry process's worth of server on the same directory and database."""

    def __init__(self, channel: grpc.Channel, running: RunningRegistry) -> None:
        super().__init__(channel)
        self.running = running


@pytest.fixture
def replica(registry: Registry) -> Iterator[Callable[..., Replica]]:
    started: list[Replica] = []

    def start(poll_interval: float = 0.1) -> Replica:
        running = server.start(
            server.open_context(registry.directory, clock=registry.clock),
            "127.0.0.1:0",
            insecure=True,
            heartbeat=HEARTBEAT,
            freshness_check=3600,
            poll_interval=poll_interval,
        )
        started.append(Replica(grpc.insecure_channel(f"127.0.0.1:{running.port}"), running))
        return started[-1]

    yield start
    for replica in started:
        replica.channel.close()
        replica.running.stop(grace=0.5)


def test_a_subscriber_of_one_replica_hears_of_a_change_made_through_another(
    registry: Registry,
    subscribe: Subscribe,
    replica: Callable[..., Replica],
) -> None:
    other = replica()
    issued = registry.issue(registry.cleared_person().assessment.id)
    version, uri, seq = current(registry)
    subscription = Subscription(other.publication.Watch(holding(version, uri, seq), timeout=WATCH_DEADLINE))
    assert subscription.next()[0] == "heartbeat"

    registry.adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued.id, reason="left"))

    kind, token = subscription.next_update()
    assert kind == "status_delta"
    assert parse_status_delta(token).updates == ((issued.record.status_index, Status.REVOKED),)
    subscription.close()


def test_a_full_list_is_not_followed_by_a_change_it_already_holds(
    registry: Registry,
    replica: Callable[..., Replica],
) -> None:
    lagging = replica(poll_interval=3600)  # its hub learns of other replicas' changes only when told
    issued = registry.issue(registry.cleared_person().assessment.id)
    registry.adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued.id, reason="left"))
    _version, _uri, seq = current(registry)
    subscription = Subscription(lagging.publication.Watch(pb.WatchRequest(), timeout=WATCH_DEADLINE))

    first = subscription.until_idle()
    lagging.running.hub.refresh()

    [listed] = [token for kind, token in first if kind == "status_list"]
    assert parse_status_list_token(listed).seq == seq, "the full list is read as it is now"
    assert subscription.until_idle() == [], "no delta the subscriber's full list already holds"
    subscription.close()


class RevokeWhenListLocked:
    """The first time the status list is about to be locked, a revocation commits through the API first."""

    def __init__(self, registry: Registry, credential_id: str) -> None:
        self._registry, self._credential_id = registry, credential_id
        self.fired = False

    def __call__(
        self, conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        text = " ".join(statement.split()).upper()
        if self.fired or not (text.startswith("SELECT STATUS_LISTS.") and text.endswith("FOR UPDATE")):
            return
        self.fired = True
        revocation = threading.Thread(
            target=self._registry.adjudicator.credentials.RevokeCredential,
            args=(pb.RevokeCredentialRequest(id=self._credential_id, reason="left"),),
        )
        revocation.start()
        revocation.join(timeout=30)


def test_a_full_list_built_while_a_revocation_commits_carries_the_sequence_of_what_it_holds(
    registry: Registry,
) -> None:
    issued = registry.issue(registry.cleared_person().assessment.id)
    adjudicator = registry.adjudicator  # registered before the race
    [(seq_before,)] = registry.sql("SELECT seq FROM status_lists WHERE id = 1")
    race = RevokeWhenListLocked(registry, issued.id)
    racing = registry.ctx.db.dialect != "sqlite"  # SQLite runs writing transactions one at a time
    if racing:
        event.listen(registry.ctx.db.engine, "before_cursor_execute", race)
    try:
        token = registry.public.publication.GetStatusList(
            pb.GetStatusListRequest(uri=issued.record.status_list_uri)
        ).token
    finally:
        if racing:
            event.remove(registry.ctx.db.engine, "before_cursor_execute", race)
    assert race.fired == racing
    if not racing:
        adjudicator.credentials.RevokeCredential(pb.RevokeCredentialRequest(id=issued.id, reason="left"))

    listed = parse_status_list_token(token)
    revoked = listed.status_of(issued.record.status_index) == Status.REVOKED
    assert listed.seq == seq_before + (1 if revoked else 0), "a list's sequence number names what it holds"
    assert registry.credential(issued.id).state == common.CREDENTIAL_STATE_REVOKED
