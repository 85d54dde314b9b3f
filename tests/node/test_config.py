"""node.toml is validated on load, and a bad value is refused naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.errors import InvalidArgumentError
from node.clock import UNSAFE_CLOCK_ENV, UnsafeFileClock, write_clock_file
from node.config import NodeConfig

FINGERPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def config(directory: Path, **overrides: object) -> NodeConfig:
    values: dict[str, object] = {
        "node_id": "node_1",
        "organization_id": "org_1",
        "jurisdiction": "JP",
        "registry": "registry.jp.example:7443",
        "root_fingerprint": FINGERPRINT,
    }
    values.update(overrides)
    return NodeConfig(directory=directory, **values)  # type: ignore[arg-type]


def test_a_saved_configuration_loads_back(tmp_path: Path) -> None:
    saved = config(
        tmp_path,
        organization_name='Example "KK"\n',
        staleness={"TOP_SECRET": 60, "SECRET": 600, "CONFIDENTIAL": 6000},
        listen="unix:/run/node.sock",
    )
    saved.save()

    loaded = NodeConfig.load(tmp_path)

    assert loaded == saved
    assert loaded.policy.max_age("SECRET") == 600
    assert loaded.audience == "node_1"
    assert (tmp_path / "node.toml").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"root_fingerprint": "short"}, "root_fingerprint"),
        ({"jurisdiction": "Japan"}, "jurisdiction"),
        ({"registry": "no-port"}, "registry"),
        ({"registry_insecure": True}, "registry_insecure"),
        ({"listen": "0.0.0.0:7600"}, "listen"),
        ({"peer_listen": "0.0.0.0:7601", "peer_insecure": True}, "peer_insecure"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"staleness": {"SECRET": -1}}, "staleness.SECRET"),
        ({"staleness": {"SECRET": "1h"}}, "staleness.SECRET"),
        ({"staleness": {}}, "staleness"),
        ({"verify_threads": -1}, "verify_threads"),
        ({"verify_threads": 65}, "verify_threads"),
        ({"verify_threads": "2"}, "verify_threads"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(
    tmp_path: Path, overrides: dict[str, object], key: str
) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        config(tmp_path, **overrides)
    assert refused.value.field == key


def test_verify_threads_default_to_one_per_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("node.config.os.cpu_count", lambda: 6)
    assert config(tmp_path).threads_for_verify == 6
    assert config(tmp_path, verify_threads=1).threads_for_verify == 1


def test_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    config(tmp_path).save()
    path = tmp_path / "node.toml"
    path.write_text('stalenes = "typo"\n' + path.read_text())

    with pytest.raises(InvalidArgumentError) as refused:
        NodeConfig.load(tmp_path)

    assert refused.value.field == "stalenes"


def test_a_missing_configuration_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="clearance node init"):
        NodeConfig.load(tmp_path)


def test_the_unsafe_clock_needs_the_environment_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock_file = tmp_path / "clock"
    write_clock_file(clock_file, 1234)
    monkeypatch.delenv(UNSAFE_CLOCK_ENV, raising=False)

    with pytest.raises(InvalidArgumentError) as refused:
        UnsafeFileClock(clock_file)
    assert refused.value.field == "unsafe_clock_file"

    monkeypatch.setenv(UNSAFE_CLOCK_ENV, "1")
    clock = UnsafeFileClock(clock_file)
    assert clock() == 1234
    write_clock_file(clock_file, 5678)
    assert clock() == 5678
