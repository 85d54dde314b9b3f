"""Node to node: two organizations' nodes authenticate each other with facility credentials, then decide."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from clearance.channel import open_channel
from clearance.errors import AuthenticationError
from clearance.rpc import to_error
from clearance.v1 import common_pb2, node_pb2, node_pb2_grpc
from node.client import NodeClient
from node.clock import UNSAFE_CLOCK_ENV
from node.config import DECISIONS_NAME
from node.decision_log import DecisionLog
from tests.cli.conftest import Run, run_cli
from tests.node.harness import (
    NodeProcess,
    Organization,
    RegistryHarness,
    SharedClock,
    init_node,
    presentation,
    wait_until,
)

pytestmark = [pytest.mark.database, pytest.mark.slow]

JOINT = json.dumps(
    {"jurisdiction": "JP", "level": "SECRET", "category": "joint-research", "releasable_to": []}
)


@pytest.fixture
def peers(
    tmp_path: Path, registry: RegistryHarness, clock: SharedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Organization, Path, NodeProcess]]:
    """Alpha's node directory (the CLI acts for it as the caller) and Beta's node (the peer); both running."""
    monkeypatch.setenv(UNSAFE_CLOCK_ENV, "1")  # the in-process CLI reads Alpha's clock file too
    alpha = registry.organization("Alpha KK")
    beta = registry.organization("Beta Lab")
    for org, name in ((alpha, "alpha"), (beta, "beta")):
        result = init_node(tmp_path / name, registry, registry.enrollment_token(org), clock=clock, peer=True)
        assert result.exit_code == 0, result.stderr
    with NodeProcess(tmp_path / "alpha") as alpha_node, NodeProcess(tmp_path / "beta") as beta_node:
        for running in (alpha_node.start(), beta_node.start()):
            client = NodeClient.for_directory(running.directory)
            wait_until(lambda: bool(client.sync_status().status_lists), 15, "a node did not sync")  # noqa: B023
            client.close()
        yield alpha, tmp_path / "alpha", beta_node


def present_to_peer(
    registry: RegistryHarness, clock: SharedClock, caller: Path, peer: NodeProcess, issued: object
) -> Run:
    address = peer.peer_address
    challenge = run_cli(["node", "peer", "challenge", "--peer", address, "--insecure", "--json"])
    assert challenge.exit_code == 0, challenge.stderr
    nonce = challenge.json()
    path = caller.parent / "presentation.sd-jwt"
    path.write_text(presentation(issued, nonce=nonce["nonce"], audience=nonce["audience"], at=clock()))  # type: ignore[arg-type]
    return run_cli(
        [
            "node",
            "peer",
            "present",
            "--dir",
            str(caller),
            "--peer",
            address,
            "--insecure",
            "--label",
            JOINT,
            str(path),
            "--json",
        ]
    )


def test_a_person_of_one_organization_is_decided_on_at_another(
    registry: RegistryHarness, clock: SharedClock, peers: tuple[Organization, Path, NodeProcess]
) -> None:
    alpha, alpha_dir, beta = peers
    issued = registry.issue(alpha)

    result = present_to_peer(registry, clock, alpha_dir, beta, issued)

    assert result.exit_code == 0, result.stderr
    assert result.json()["allowed"] is True
    log = DecisionLog(beta.directory / DECISIONS_NAME)
    try:
        (entry,) = log.entries()
    finally:
        log.close()
    assert json.loads(entry.record)["channel"] == f"peer:{alpha.id}"  # decided and logged at Beta


def test_a_revoked_facility_credential_cannot_open_a_session(
    registry: RegistryHarness, clock: SharedClock, peers: tuple[Organization, Path, NodeProcess]
) -> None:
    alpha, alpha_dir, beta = peers
    issued = registry.issue(alpha)
    client = NodeClient.for_directory(beta.directory)
    seq = client.sync_status().status_lists[0].sequence
    registry.withdraw_facility(alpha)  # revokes Alpha's facility credential (and suspends its people)
    wait_until(lambda: client.sync_status().status_lists[0].sequence > seq, 10, "beta did not learn of it")
    client.close()

    result = present_to_peer(registry, clock, alpha_dir, beta, issued)

    assert result.exit_code == 4
    assert "facility presentation refused: revoked" in result.stderr


def test_a_node_without_a_facility_credential_cannot_open_a_session(
    tmp_path: Path,
    registry: RegistryHarness,
    clock: SharedClock,
    peers: tuple[Organization, Path, NodeProcess],
) -> None:
    _alpha, _alpha_dir, beta = peers
    uncleared = registry.organization("Gamma GK")
    registry.withdraw_facility(uncleared)
    token = registry.enrollment_token(uncleared)
    enrolled = init_node(tmp_path / "gamma", registry, token, clock=clock)
    assert enrolled.json()["facility_credential"] is False
    person = registry.issue(registry.organization("Delta KK"))

    result = present_to_peer(registry, clock, tmp_path / "gamma", beta, person)

    assert result.exit_code == 6
    assert "holds no facility credential" in result.stderr


def test_a_peer_session_id_is_needed(peers: tuple[Organization, Path, NodeProcess]) -> None:
    _alpha, _alpha_dir, beta = peers
    channel = open_channel(beta.peer_address, insecure=True)
    stub = node_pb2_grpc.PeerServiceStub(channel)
    request = node_pb2.PresentRequest(
        session_id="made-up",
        label=common_pb2.Label(jurisdiction="JP", level="SECRET", category="x"),
        presentation="x~y~z",
    )
    try:
        with pytest.raises(grpc.RpcError) as excinfo:
            stub.Present(request, timeout=10)
    finally:
        channel.close()
    assert isinstance(to_error(excinfo.value), AuthenticationError)
