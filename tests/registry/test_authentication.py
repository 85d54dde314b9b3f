"""Authentication costs an attacker's tokens no lasting memory, and a disabled account stops at once everywhere."""

from __future__ import annotations

import base64
import concurrent.futures
import json
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest

from clearance.access import sign_access_token
from clearance.channel import open_channel
from clearance.keys import SigningKey
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api import auth, server
from registry.api.server import RunningRegistry
from tests.registry.conftest import Registry, fails_with

pytestmark = pytest.mark.database

FLOOD = 6_000
"""More unknown keys than the registry remembers as unknown."""


def test_tokens_with_random_key_ids_leave_bounded_memory_and_cost_one_lookup_each(registry: Registry) -> None:
    authenticator = registry.running.authenticator
    keys = [SigningKey.generate() for _ in range(FLOOD)]
    tokens = [
        sign_access_token(key, principal=f"staff_{n}", audience=registry.audience, now=registry.clock())
        for n, key in enumerate(keys)
    ]
    before = authenticator.database_lookups
    channel = grpc.insecure_channel(registry.endpoint)
    stub = rpc.CredentialServiceStub(channel)

    def call(token: str) -> str:
        try:
            stub.ListCredentials(
                pb.ListCredentialsRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=30
            )
        except grpc.RpcError as exc:
            return exc.code().name
        return "OK"

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = Counter(pool.map(call, tokens))
    channel.close()

    # Refused, or (while the small look-up queue was full) told to come back: never served.
    assert set(codes) <= {"UNAUTHENTICATED", "RESOURCE_EXHAUSTED"}
    assert codes["UNAUTHENTICATED"] > FLOOD // 2
    assert authenticator.database_lookups - before <= FLOOD, "at most one query per unknown key"
    assert authenticator.cached <= auth.UNKNOWN_KEYS + 16, "unknown keys are remembered within a bound"
    # Honest callers were never affected.
    assert registry.adjudicator.credentials.ListCredentials(pb.ListCredentialsRequest()).credentials == []


def test_a_known_key_id_with_a_forged_signature_is_refused_without_a_lookup(registry: Registry) -> None:
    adjudicator = registry.adjudicator
    adjudicator.credentials.ListCredentials(pb.ListCredentialsRequest())  # its key is now known
    authenticator = registry.running.authenticator
    before = authenticator.database_lookups
    forger = SigningKey.generate()
    token = sign_access_token(
        forger, principal=adjudicator.id, audience=registry.audience, now=registry.clock()
    )
    _header, payload, signature = token.split(".")
    forged_header = (
        base64.urlsafe_b64encode(
            json.dumps({"alg": "EdDSA", "typ": "clearance-access+jwt", "kid": adjudicator.key.kid}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    forged = f"{forged_header}.{payload}.{signature}"
    channel = open_channel(registry.endpoint, insecure=True, token=lambda: forged)
    try:
        fails_with(
            grpc.StatusCode.UNAUTHENTICATED,
            lambda: rpc.CredentialServiceStub(channel).ListCredentials(pb.ListCredentialsRequest()),
        )
    finally:
        channel.close()
    assert authenticator.database_lookups == before


@pytest.fixture
def second_replica(registry: Registry) -> Iterator[RunningRegistry]:
    running = server.start(
        server.open_context(registry.directory, clock=registry.clock),
        "127.0.0.1:0",
        insecure=True,
        freshness_check=3600,
    )
    yield running
    running.stop(grace=0.5)


def test_a_disabled_account_is_refused_on_its_next_call_on_another_replica(
    registry: Registry, second_replica: RunningRegistry
) -> None:
    adjudicator = registry.adjudicator
    token = sign_access_token(
        adjudicator.key, principal=adjudicator.id, audience=registry.audience, now=registry.clock()
    )
    channel = open_channel(f"127.0.0.1:{second_replica.port}", insecure=True, token=lambda: token)
    elsewhere = rpc.CredentialServiceStub(channel)
    try:
        assert (
            elsewhere.ListCredentials(pb.ListCredentialsRequest()).credentials == []
        )  # known and cached there

        registry.admin.staff.DisableStaff(pb.DisableStaffRequest(id=adjudicator.id))

        # The same token, on the replica that did not disable it, on the very next call.
        fails_with(
            grpc.StatusCode.UNAUTHENTICATED,
            lambda: elsewhere.ListCredentials(pb.ListCredentialsRequest()),
            mentioning="disabled",
        )
    finally:
        channel.close()
