"""The local API in this process: token on every call, hostile presentations refused one by one, Unix sockets."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from clearance.channel import open_channel
from clearance.credentials import SD_JWT_VC_TYP
from clearance.encoding import b64url_decode
from clearance.errors import AuthenticationError, InvalidArgumentError
from clearance.sdjwt import split
from clearance.v1 import common_pb2, node_pb2, node_pb2_grpc
from node.client import NodeClient
from node.decisions import Label
from node.server import RunningServer, start_local_api
from node.servicers import NodeServicer
from node.status import describe
from node.sync import SyncStatus
from tests.factories import NOW, Holder, RegistryWorld, Verifier, compact_jws, present_credential
from tests.node.conftest import AUDIENCE, Desk, DeskFactory

TOKEN = "local-token-for-tests"


@pytest.fixture
def world() -> RegistryWorld:
    return RegistryWorld.create("JP")


@pytest.fixture
def desk(world: RegistryWorld, desk_for: DeskFactory) -> Desk:
    return desk_for(Verifier.synced(world).trust, world)


def serve(desk: Desk, listen: str) -> RunningServer:
    gatekeeper = desk.gatekeeper
    status = lambda: describe(gatekeeper.state.current, SyncStatus(), [], gatekeeper.policy, desk.now)  # noqa: E731
    return start_local_api(NodeServicer(gatekeeper, status), listen, TOKEN)


@pytest.fixture
def api(desk: Desk) -> Iterator[NodeClient]:
    server = serve(desk, "127.0.0.1:0")
    client = NodeClient(server.address, TOKEN)
    yield client
    client.close()
    server.stop(0.5)


def bound(desk: Desk, credential: str, holder: Holder, *, audience: str = AUDIENCE) -> str:
    nonce = desk.gatekeeper.challenge().nonce
    return present_credential(
        credential, holder, nonce=nonce, audience=audience, issued_at=NOW, disclose=("employer",)
    )


def test_every_call_needs_the_local_token(desk: Desk, api: NodeClient) -> None:
    assert api.challenge().audience == AUDIENCE
    for token in ("", "x" * len(TOKEN), TOKEN + "x"):
        stranger = NodeClient(api.address, token)
        try:
            with pytest.raises(AuthenticationError):
                stranger.challenge()
            with pytest.raises(AuthenticationError):
                stranger.verify(["x"])
        finally:
            stranger.close()


def test_the_api_serves_on_a_unix_socket(desk: Desk) -> None:
    directory = Path(tempfile.mkdtemp(prefix="cl-", dir="/tmp"))  # socket paths must be short
    try:
        server = serve(desk, f"unix:{directory / 'node.sock'}")
        client = NodeClient(server.address, TOKEN)
        try:
            assert client.challenge().audience == AUDIENCE
            assert (directory / "node.sock").stat().st_mode & 0o077 == 0
        finally:
            client.close()
            server.stop(0.5)
    finally:
        shutil.rmtree(directory)


def test_hostile_presentations_are_refused_each_with_its_reason(
    world: RegistryWorld, desk: Desk, api: NodeClient
) -> None:
    credential, holder = world.issue()
    good = bound(desk, credential, holder)
    jwt = split(credential).jwt
    payload = json.loads(b64url_decode(jwt.split(".")[1]))
    unsigned = compact_jws({"alg": "none", "typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}, payload)
    tampered = compact_jws(
        {"alg": "EdDSA", "typ": SD_JWT_VC_TYP, "kid": world.issuing.kid},
        {**payload, "clearance": {**payload["clearance"], "level": "TOP_SECRET"}},
        b64url_decode(jwt.split(".")[2]),
    )
    replayed = bound(desk, credential, holder)
    hostile = {
        "alg none": (
            bound(desk, unsigned + credential[credential.index("~") :], holder),
            "algorithm_not_allowed",
        ),
        "tampered claims": (
            bound(desk, tampered + credential[credential.index("~") :], holder),
            "bad_signature",
        ),
        "copied without the key": (bound(desk, credential, Holder()), "key_binding_invalid"),
        "other audience": (bound(desk, credential, holder, audience="node-b"), "audience_mismatch"),
        "no key binding": (credential, "key_binding_missing"),
        "nonce not issued": (
            present_credential(credential, holder, nonce="made-up", audience=AUDIENCE, issued_at=NOW),
            "nonce_unknown",
        ),
        "oversized": ("a" * 70_000 + "~", "too_large"),
        "nested": ("[" * 5000 + "~x~", "malformed"),
        "empty": ("", "malformed"),
        "not an sd-jwt": ("hello", "malformed"),
    }
    api.verify([replayed])

    results = api.verify([p for p, _ in hostile.values()] + [replayed, good])

    reasons = {name: r.reason for name, r in zip(hostile, results, strict=False)}
    assert reasons == {name: reason for name, (_, reason) in hostile.items()}
    assert results[-2].reason == "nonce_replayed"
    assert results[-1].valid, results[-1].detail
    assert json.loads(results[-1].disclosed_json) == {"employer": "Example KK"}


def test_a_batch_is_bounded(api: NodeClient) -> None:
    with pytest.raises(InvalidArgumentError, match="at most 1000"):
        api.verify(["x"] * 1001)


@pytest.mark.parametrize(
    "label",
    [
        common_pb2.Label(jurisdiction="jp", level="SECRET", category="cyber-threat"),
        common_pb2.Label(jurisdiction="JP", level="SECRET", category="x" * 100),
        common_pb2.Label(jurisdiction="JP", level="SECRET", category="cyber-threat", releasable_to=["USA"]),
        common_pb2.Label(),
    ],
)
def test_a_malformed_label_is_a_bad_argument_not_a_decision(
    desk: Desk, api: NodeClient, label: common_pb2.Label
) -> None:
    channel = open_channel(api.address, insecure=True, token=lambda: TOKEN)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            node_pb2_grpc.NodeServiceStub(channel).Authorize(
                node_pb2.AuthorizeRequest(label=label, presentation="x~y~"), timeout=10
            )
    finally:
        channel.close()
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith("label")
    assert desk.gatekeeper.decisions.entries() == []


def test_authorize_through_the_api_returns_the_logged_decision(
    world: RegistryWorld, desk: Desk, api: NodeClient
) -> None:
    credential, holder = world.issue()

    response = api.authorize(Label("JP", "SECRET", "cyber-threat", ()), bound(desk, credential, holder))

    assert response.allowed
    assert response.code == "allowed"
    assert response.log_sequence == 1
    assert response.presenter_jurisdiction == "JP"


def test_a_denial_carries_its_code_on_the_wire(world: RegistryWorld, desk: Desk, api: NodeClient) -> None:
    credential, holder = world.issue()
    nonce = desk.gatekeeper.challenge().nonce
    hidden = present_credential(
        credential, holder, nonce=nonce, audience=AUDIENCE, issued_at=NOW, disclose=()
    )
    revoked_credential, revoked_holder = world.issue(index=900)
    world.status_list.set(900, 1)
    world.seq += 1
    desk.gatekeeper.state.update(lambda trust: trust.update_status_list(world.status_token(), NOW), _keep)

    refused = api.authorize(Label("JP", "SECRET", "cyber-threat", ()), hidden)
    revoked = api.authorize(
        Label("JP", "SECRET", "cyber-threat", ()), bound(desk, revoked_credential, revoked_holder)
    )

    assert (refused.allowed, refused.code) == (False, "employer_not_disclosed")
    assert (revoked.allowed, revoked.code) == (False, "revoked")
    logged = desk.gatekeeper.decisions.entries()
    assert [e.code for e in logged] == ["employer_not_disclosed", "revoked"]


def _keep(_trust: object, _result: object) -> None:
    """Persist nothing: this desk's trust lives in memory only."""


def test_sync_status_reports_trust_and_freshness(api: NodeClient) -> None:
    status = api.sync_status()

    assert status.home.jurisdiction == "JP"
    assert status.home.bundle_version == 1
    assert status.status_lists[0].age_seconds == 0
    assert dict(status.staleness_policy)["TOP_SECRET"] == 3600
    assert not status.connected
    assert any("not connected" in p for p in status.problems)
