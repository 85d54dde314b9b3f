"""What ``registry init`` writes is the owner's alone, and a registry refuses to serve otherwise."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from clearance.errors import StorageError
from registry.api import server
from registry.api.private_files import private_paths
from registry.config import RegistryConfig
from registry.setup import init_registry

pytestmark = pytest.mark.database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_leaves_every_private_file_0600_in_0700_directories(tmp_path: Path, database_url: str) -> None:
    directory = tmp_path / "registry"
    ctx, _admin = init_registry(directory, jurisdiction="JP", database_url=database_url)
    ctx.close()
    config = RegistryConfig.load(directory)
    folders, files = private_paths(config)

    assert {p.name: mode(p) for p in folders} == {"registry": 0o700, "keys": 0o700, "tls": 0o700}
    written = [p for p in files if p.exists()]
    assert {p.name for p in written} >= {
        "registry.toml",
        "admin.json",
        "server-key.pem",
        "root.pem",
        "pseudonym.key",
    }
    if database_url.startswith("sqlite"):
        assert "test.sqlite3" in {p.name for p in written}
    assert {p.name: mode(p) for p in written} == {p.name: 0o600 for p in written}
    # What is public stays readable: the CA and the certificate are handed to clients.
    assert mode(directory / "tls" / "ca.pem") & 0o044


@pytest.mark.parametrize("opened", ["registry.toml", "tls/server-key.pem", "keys", "."])
def test_a_registry_refuses_to_start_when_a_private_file_is_open_to_others(
    tmp_path: Path, database_url: str, opened: str
) -> None:
    directory = tmp_path / "registry"
    ctx, _admin = init_registry(directory, jurisdiction="JP", database_url=database_url)
    target = (directory / opened).resolve()
    target.chmod(0o755 if target.is_dir() else 0o644)
    try:
        with pytest.raises(StorageError) as refused:
            server.start(ctx, "127.0.0.1:0", insecure=True, freshness_check=3600)
    finally:
        ctx.close()
    fix = "chmod 700" if target.is_dir() else "chmod 600"
    assert f"{fix} {target}" in str(refused.value)
