"""The deployment files are checked as far as this machine allows (no container engine here).

The example configurations load with the same validation a real start uses;
the compose file's commands are commands and options the CLI has; the image
installs the project the way the README and CI do and copies every package;
the systemd unit passes ``systemd-analyze verify``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from cli.main import cli
from node.config import NodeConfig
from registry.config import RegistryConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent


def test_the_example_registry_configuration_is_a_valid_one(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "registry.toml.example", tmp_path / "registry.toml")
    config = RegistryConfig.load(tmp_path)
    assert config.jurisdiction == "JP"
    assert config.database_url.startswith("postgresql://")
    assert config.status_list_size >= 131_072


def test_the_example_registry_configuration_names_every_setting() -> None:
    text = (DEPLOY / "registry.toml.example").read_text()
    settings = {f for f in RegistryConfig.__dataclass_fields__ if f not in ("directory", "extra")}
    missing = {s for s in settings if not re.search(rf"^{s} = ", text, re.MULTILINE)}
    assert not missing, f"registry.toml.example does not show {sorted(missing)}"


def test_the_example_node_configuration_is_a_valid_one(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "node.toml.example", tmp_path / "node.toml")
    config = NodeConfig.load(tmp_path)
    assert config.jurisdiction == "JP"
    assert config.policy.max_age("TOP_SECRET") == 3600


def _command_for(args: list[str]) -> tuple[click.Command, list[str]]:
    """Follow subcommand names down the CLI; return the command and its remaining arguments."""
    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        ctx = click.Context(command)
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"no command {rest[0]!r} in {args}"
        command, rest = sub, rest[1:]
    return command, rest


def _options(command: click.Command) -> set[str]:
    return {name for param in command.params if isinstance(param, click.Option) for name in param.opts}


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_every_compose_command_is_a_real_command_with_real_options() -> None:
    services = _compose()["services"]
    checked = 0
    for name, service in services.items():
        if service.get("image") != "clearance" or "command" not in service:
            continue
        args = [str(a).replace("${", "").split(":?")[0] for a in service["command"]]
        command, rest = _command_for(args)
        unknown = {a for a in rest if a.startswith("--")} - _options(command)
        assert not unknown, f"service {name}: {command.name} has no option {sorted(unknown)}"
        checked += 1
    assert checked >= 4


def test_compose_runs_two_registry_replicas_on_postgresql_and_a_node() -> None:
    services = _compose()["services"]
    replicas = [s for s in services.values() if s.get("command", [None, None])[:2] == ["registry", "serve"]]
    assert len(replicas) == 2
    assert all(r["volumes"] == replicas[0]["volumes"] for r in replicas)
    init = services["registry-init"]["command"]
    assert init[init.index("--database-url") + 1].startswith("postgresql://")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["node"]["command"][:2] == ["node", "run"]


def test_the_image_installs_the_project_as_the_readme_does_and_copies_every_package() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    readme = (REPO / "README.md").read_text()
    assert "pip install ." in readme
    assert re.search(r'RUN pip install "\.\[postgresql\]"', dockerfile)
    pyproject = (REPO / "pyproject.toml").read_text()
    packages = re.search(r"include = \[(.*?)\]", pyproject)
    assert packages is not None
    for package in re.findall(r'"(\w+)\*"', packages.group(1)):
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, re.MULTILINE), (
            f"the image lacks {package}/"
        )
    entrypoint = re.search(r'ENTRYPOINT \["(\w+)"\]', dockerfile)
    assert entrypoint is not None
    assert entrypoint.group(1) == "clearance"


def test_the_node_unit_verifies_with_systemd(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (CI has it and fails on this skip)")
    clearance = Path(sys.executable).parent / "clearance"  # the console script this environment installed
    assert clearance.exists()
    unit = tmp_path / "clearance-node.service"
    unit.write_text(
        (DEPLOY / "clearance-node.service")
        .read_text()
        .replace("/opt/clearance/venv/bin/clearance", str(clearance))
    )
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    problems = [line for line in result.stderr.splitlines() if str(unit) in line]
    assert not problems, problems
    node_run = re.search(r"^ExecStart=\S+ (.*)$", unit.read_text(), re.MULTILINE)
    assert node_run is not None
    command, rest = _command_for(node_run.group(1).split())
    assert command.name == "run"
    assert {a for a in rest if a.startswith("--")} <= _options(command)
