"""The ``clearance`` entry point: help lists the commands and stays fast to import."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from cli import exits
from cli.main import cli
from tests.cli.conftest import REPO, run_script

HEAVY = ("grpc", "sqlalchemy", "cryptography", "jwt")
"""Packages that cost tens of milliseconds to import: never on the path of ``clearance --help``."""


def imported_modules(statement: str) -> set[str]:
    """Top-level names of every module ``python -X importtime -c STATEMENT`` imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            module = line.rsplit("|", 1)[1].strip()
            names.add(module.split(".")[0])
    assert names, done.stderr
    return names


def test_help_lists_inspect_and_bench() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == exits.OK
    commands = result.stdout.split("Commands:", 1)[1]
    assert "inspect" in commands
    assert "bench" in commands


@pytest.mark.parametrize("module", ["cli.main", "cli.output", "cli.inspect_command", "cli.bench_commands"])
def test_cli_modules_import_nothing_heavy(module: str) -> None:
    assert imported_modules(f"import {module}").isdisjoint(HEAVY)


def test_heavy_imports_are_detected() -> None:
    """The check above would notice: the trust core does pull them in."""
    assert "cryptography" in imported_modules("import clearance.keys")


def test_installed_script_answers_help() -> None:
    done = run_script(["--help"])

    assert done.returncode == exits.OK
    assert "inspect" in done.stdout
    assert "bench" in done.stdout
    assert done.stderr == ""


def test_subcommand_help_does_not_need_the_trust_core() -> None:
    for args in (["inspect", "--help"], ["bench", "verify", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == exits.OK, result.output
        assert "--json" in result.stdout
