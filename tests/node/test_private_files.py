"""Everything ``node init`` and the node create that is not public is 0600 in a 0700 directory, checked at start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from clearance.errors import StorageError
from node.agent import NodeAgent
from node.config import DECISIONS_NAME, STORE_NAME
from tests.node.harness import RegistryHarness, SharedClock, init_node

pytestmark = pytest.mark.database

PUBLIC = {"tls/ca.pem", "tls/server.pem", "registry-ca.pem"}


def modes(directory: Path) -> dict[str, int]:
    return {
        str(path.relative_to(directory)): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def directory(tmp_path: Path, registry: RegistryHarness, clock: SharedClock) -> Path:
    org = registry.organization("Example KK")
    result = init_node(
        tmp_path / "node", registry, registry.enrollment_token(org), clock=clock, peer_tls=True
    )
    assert result.exit_code == 0, result.stderr
    return tmp_path / "node"


def test_init_and_a_first_start_leave_only_owner_readable_private_files(
    directory: Path, clock: SharedClock
) -> None:
    agent = NodeAgent.open(directory, clock=clock)  # creates the decision log
    agent.stop(0)

    found = modes(directory)

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "tls").stat().st_mode) == 0o700
    assert {"node.toml", "node-key.pem", "local-token", "facility.sd-jwt", STORE_NAME, DECISIONS_NAME} <= set(
        found
    )
    assert "tls/server-key.pem" in found
    private = {name: mode for name, mode in found.items() if name not in PUBLIC}
    assert private == dict.fromkeys(private, 0o600)


@pytest.mark.parametrize(
    ("name", "mode", "fix"),
    [
        (STORE_NAME, 0o644, "chmod 600"),
        (DECISIONS_NAME, 0o640, "chmod 600"),
        ("node.toml", 0o604, "chmod 600"),
        ("tls/server-key.pem", 0o644, "chmod 600"),
        (".", 0o755, "chmod 700"),
    ],
)
def test_a_node_whose_private_files_others_may_read_does_not_start(
    directory: Path, clock: SharedClock, name: str, mode: int, fix: str
) -> None:
    NodeAgent.open(directory, clock=clock).stop(0)
    (directory / name).chmod(mode)

    with pytest.raises(StorageError, match=fix) as refused:
        NodeAgent.open(directory, clock=clock)

    assert str(directory if name == "." else directory / name) in str(refused.value)
