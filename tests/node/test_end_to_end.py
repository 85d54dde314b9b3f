"""End to end: a real registry server and real node processes on loopback, time driven by the test.

The registry runs in this process (``registry.server.start`` on the database
under test); each node is ``python -m cli.main node run`` in its own process,
reading the shared clock from a file. Decisions are asked through the node's
local API (``NodeClient``) and the ``clearance node`` commands.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearance.errors import AuthenticationError
from clearance.statuslist import parse_status_list_token
from node.client import NodeClient
from node.config import STORE_NAME
from node.decisions import Label
from node.store import NodeStore
from registry.publication import publisher
from tests.cli.conftest import run_cli
from tests.node.harness import (
    Issued,
    NodeProcess,
    Organization,
    RegistryHarness,
    SharedClock,
    init_node,
    presentation,
    wait_until,
)

pytestmark = [pytest.mark.database, pytest.mark.slow]

SECRET_ITEM = Label("JP", "SECRET", "cyber-threat", ())
STALENESS = {"TOP_SECRET": 600, "SECRET": 3600, "CONFIDENTIAL": 86400}


class RunningNode:
    """A node process and a client of its local API."""

    def __init__(self, directory: Path, clock: SharedClock) -> None:
        self.directory = directory
        self.clock = clock
        self.process = NodeProcess(directory)
        self.client: NodeClient | None = None

    def start(self) -> RunningNode:
        self.process.start()
        self.client = NodeClient.for_directory(self.directory)
        return self

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        self.process.kill()

    @property
    def api(self) -> NodeClient:
        assert self.client is not None
        return self.client

    def list_seq(self) -> int:
        lists = self.api.sync_status().status_lists
        return lists[0].sequence if lists else -1

    def present(self, issued: Issued, **options: object) -> str:
        challenge = self.api.challenge()
        return presentation(
            issued,
            nonce=challenge.nonce,
            audience=challenge.audience,
            at=self.clock(),
            **options,  # type: ignore[arg-type]
        )

    def decide(self, issued: Issued, label: Label = SECRET_ITEM) -> tuple[bool, list[str]]:
        response = self.api.authorize(label, self.present(issued))
        return response.allowed, list(response.reasons)

    def write(self, name: str, content: str) -> str:
        path = self.directory.parent / name
        path.write_text(content)
        return str(path)


@pytest.fixture
def enrolled(
    tmp_path: Path, registry: RegistryHarness, clock: SharedClock
) -> Iterator[tuple[Organization, RunningNode]]:
    """An organization with a facility clearance and its enrolled, running node."""
    org = registry.organization("Example KK")
    result = init_node(
        tmp_path / "node", registry, registry.enrollment_token(org), clock=clock, staleness=STALENESS
    )
    assert result.exit_code == 0, result.stderr
    node = RunningNode(tmp_path / "node", clock).start()
    wait_until(lambda: node.list_seq() >= 0, 15, "the node did not sync its status list")
    try:
        yield org, node
    finally:
        node.stop()


def registry_seq(registry: RegistryHarness) -> int:
    assert registry.ctx is not None
    uri = registry.ctx.config.status_list_uri(1)
    return parse_status_list_token(publisher.status_list_token(registry.ctx, uri)).seq


# -- enrollment ----------------------------------------------------------------------


def test_enrollment_refuses_a_registry_whose_root_does_not_match(
    tmp_path: Path, registry: RegistryHarness, clock: SharedClock
) -> None:
    org = registry.organization("Example KK")
    wrong = "A" * 43

    result = init_node(
        tmp_path / "node", registry, registry.enrollment_token(org), clock=clock, fingerprint=wrong
    )

    assert result.exit_code == 3
    assert "root_mismatch" in result.stderr
    assert "nothing was written" in result.stderr
    assert not (tmp_path / "node").exists()


def test_an_enrollment_token_works_once(
    tmp_path: Path, registry: RegistryHarness, clock: SharedClock
) -> None:
    org = registry.organization("Example KK")
    token = registry.enrollment_token(org)

    first = init_node(tmp_path / "first", registry, token, clock=clock)
    again = init_node(tmp_path / "again", registry, token, clock=clock)

    assert first.exit_code == 0, first.stderr
    assert first.json()["facility_credential"] is True
    assert again.exit_code == 4
    assert "enrollment token is unknown, already used or expired" in again.stderr
    assert not (tmp_path / "again").exists()


# -- issue, present, decide ------------------------------------------------------------


def test_issue_present_allow_then_revoke_and_deny_after_the_push(
    registry: RegistryHarness, enrolled: tuple[Organization, RunningNode]
) -> None:
    org, node = enrolled
    issued = registry.issue(org)

    allowed, reasons = node.decide(issued)
    assert allowed, reasons

    seq = node.list_seq()
    registry.revoke(issued.credential_id)
    wait_until(lambda: node.list_seq() > seq, 10, "the revocation was not pushed to the node")

    allowed, reasons = node.decide(issued)
    assert not allowed
    assert reasons == ["revoked: credential has been revoked"]


def test_a_suspended_credential_is_denied_until_reinstated(
    registry: RegistryHarness, enrolled: tuple[Organization, RunningNode]
) -> None:
    org, node = enrolled
    issued = registry.issue(org)

    seq = node.list_seq()
    registry.suspend(issued.credential_id)
    wait_until(lambda: node.list_seq() > seq, 10, "the suspension was not pushed")
    assert node.decide(issued) == (False, ["suspended: credential is suspended"])

    seq = node.list_seq()
    registry.reinstate(issued.credential_id)
    wait_until(lambda: node.list_seq() > seq, 10, "the reinstatement was not pushed")
    assert node.decide(issued)[0]


def test_the_cli_verifies_authorizes_and_logs(
    registry: RegistryHarness, enrolled: tuple[Organization, RunningNode]
) -> None:
    org, node = enrolled
    issued = registry.issue(org)
    directory = str(node.directory)

    challenge = run_cli(["node", "challenge", "--dir", directory, "--json"]).json()
    assert challenge["audience"].startswith("node_")
    verified = node.write(
        "verify.sd-jwt",
        presentation(issued, nonce=challenge["nonce"], audience=challenge["audience"], at=node.clock()),
    )
    verify = run_cli(["node", "verify", verified, "--dir", directory, "--json"])
    assert verify.exit_code == 0, verify.stderr
    assert verify.json()["clearance"]["level"] == "SECRET"
    assert verify.json()["disclosed"] == {"employer": "Example KK"}

    replay = run_cli(["node", "verify", verified, "--dir", directory, "--json"])
    assert replay.exit_code == 3
    assert replay.json()["reason"] == "nonce_replayed"

    label = json.dumps(SECRET_ITEM.to_json())
    allow = run_cli(
        ["node", "authorize", "--label", label, node.write("p1", node.present(issued)), "--dir", directory]
    )
    assert allow.exit_code == 0, allow.stderr
    assert "ALLOW" in allow.stdout

    top = json.dumps(
        {"jurisdiction": "JP", "level": "TOP_SECRET", "category": "cyber-threat", "releasable_to": []}
    )
    deny = run_cli(
        ["node", "authorize", "--label", top, node.write("p2", node.present(issued)), "--dir", directory]
    )
    assert deny.exit_code == 3
    assert "level_insufficient" in deny.stderr

    entries = run_cli(["node", "log", "list", "--dir", directory, "--json"]).json()
    assert [(e["allowed"], e["code"]) for e in entries] == [(True, "allowed"), (False, "level_insufficient")]
    assert run_cli(["node", "log", "verify", "--dir", directory]).exit_code == 0

    status = run_cli(["node", "status", "--dir", directory, "--json"])
    assert status.exit_code == 0, status.stderr
    data = status.json()
    assert data["connected"] is True
    assert data["home"]["bundle_version"] >= 1
    assert data["pinned_root"] == registry.root_fingerprint
    assert data["status_lists"][0]["stale_for"] == []
    assert data["staleness_policy"] == STALENESS


def test_the_local_api_wants_the_local_token(enrolled: tuple[Organization, RunningNode]) -> None:
    _org, node = enrolled

    for token in ("", "not-the-token"):
        stranger = NodeClient(node.api.address, token)
        try:
            with pytest.raises(AuthenticationError, match="local token"):
                stranger.challenge()
        finally:
            stranger.close()


def test_a_replayed_presentation_is_denied(
    registry: RegistryHarness, enrolled: tuple[Organization, RunningNode]
) -> None:
    org, node = enrolled
    issued = registry.issue(org)
    once = node.present(issued)

    first = node.api.authorize(SECRET_ITEM, once)
    again = node.api.authorize(SECRET_ITEM, once)

    assert first.allowed
    assert not again.allowed
    assert again.reasons[0].startswith("nonce_replayed")


def test_verify_in_batches_reports_each_presentation(
    registry: RegistryHarness, enrolled: tuple[Organization, RunningNode]
) -> None:
    org, node = enrolled
    issued = registry.issue(org)
    batch = [node.present(issued) for _ in range(3)] + ["garbage"]

    results = node.api.verify(batch)

    assert [r.valid for r in results] == [True, True, True, False]
    assert results[3].reason == "malformed"


# -- the registry goes away --------------------------------------------------------------


def test_decisions_continue_offline_until_the_staleness_bound_then_resume(
    registry: RegistryHarness, clock: SharedClock, enrolled: tuple[Organization, RunningNode]
) -> None:
    org, node = enrolled
    issued = registry.issue(org)
    wait_until(lambda: node.list_seq() == registry_seq(registry), 10, "not synced")

    registry.stop()
    wait_until(lambda: not node.api.sync_status().connected, 10, "the node did not notice")
    assert node.decide(issued)[0], "the node stops deciding as soon as the registry is gone"

    clock.advance(STALENESS["SECRET"] + 1)
    allowed, reasons = node.decide(issued)
    assert not allowed
    assert reasons[0].startswith("status_list_stale")
    confidential = Label("JP", "CONFIDENTIAL", "cyber-threat", ())
    assert node.decide(issued, confidential)[0], "a lower item's longer bound still holds"
    status = run_cli(["node", "status", "--dir", str(node.directory), "--json"]).json()
    assert status["status_lists"][0]["stale_for"] == ["SECRET", "TOP_SECRET"]
    assert any("not connected" in p for p in status["problems"])

    registry.start()
    wait_until(lambda: node.decide(issued)[0], 15, "the node did not catch up with the registry")
    assert node.api.sync_status().connected


def test_a_node_killed_during_sync_restarts_consistent(
    registry: RegistryHarness, enrolled: tuple[Organization, RunningNode]
) -> None:
    org, node = enrolled
    issued = registry.issue(org)
    stop = threading.Event()
    changes = [0]

    def churn() -> None:
        while not stop.is_set() and changes[0] < 60:
            registry.suspend(issued.credential_id)
            registry.reinstate(issued.credential_id)
            changes[0] += 2

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        wait_until(lambda: changes[0] >= 10, 20, "no changes were made")
        node.kill()  # SIGKILL, in the middle of applying the pushed deltas
    finally:
        stop.set()
        worker.join()

    store = NodeStore(node.directory / STORE_NAME)
    try:
        rebuilt = store.rebuild(store.pinned_root(), repair=False, on_problem=lambda p: pytest.fail(str(p)))
        assert rebuilt.home is not None
        held = next(iter(rebuilt.status_lists.values()))
        assert held.seq <= registry_seq(registry)
    finally:
        store.close()

    node.start()
    wait_until(lambda: node.list_seq() == registry_seq(registry), 15, "the restarted node did not catch up")
    assert node.decide(issued)[0]  # the last change was a reinstatement


def test_one_node_process_per_directory(enrolled: tuple[Organization, RunningNode]) -> None:
    _org, node = enrolled
    second = NodeProcess(node.directory)

    with pytest.raises(AssertionError, match="exited with 1"):
        second.start(timeout=20)

    assert "another node is running" in second.log.read_text()
    assert node.api.challenge().nonce  # the first one is undisturbed
