"""``clearance witness``: init, add-log, status, and serve as a real process that survives being killed."""

from __future__ import annotations

import http.client
import os
import select
import signal
import ssl
import subprocess
from pathlib import Path

import pytest

from clearance.transparency.cosignature import CosignatureVerifier
from cli import exits
from tests.cli.conftest import REPO, clearance_command, run_cli
from tests.oversight.witnessed_log import WitnessedLog

NAME = "oversight.jp.example/witness"


@pytest.fixture
def witness_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "witness"
    result = run_cli(["witness", "init", "--dir", str(directory), "--name", NAME, "--json"])
    assert result.exit_code == exits.OK, result.stderr
    return directory


def test_init_prints_a_cosignature_verifier_key(tmp_path: Path) -> None:
    directory = tmp_path / "w"
    result = run_cli(["witness", "init", "--dir", str(directory), "--name", NAME, "--json"])

    assert result.exit_code == exits.OK, result.stderr
    verifier = CosignatureVerifier.from_vkey(result.json()["verifier_key"])
    assert verifier.name == NAME
    assert (directory / "witness-key.pem").stat().st_mode & 0o077 == 0
    again = run_cli(["witness", "init", "--dir", str(directory), "--name", NAME])
    assert again.exit_code == exits.PRECONDITION
    assert "already holds a witness" in again.stderr
    bad = run_cli(["witness", "init", "--dir", str(tmp_path / "x"), "--name", "has space"])
    assert bad.exit_code == exits.USAGE


def test_add_log_and_status(witness_dir: Path) -> None:
    log = WitnessedLog.create()
    added = run_cli(
        ["witness", "add-log", "--dir", str(witness_dir), "--origin", log.origin, "--key", log.vkey]
    )
    assert added.exit_code == exits.OK, added.stderr

    status = run_cli(["witness", "status", "--dir", str(witness_dir), "--json"])
    assert status.exit_code == exits.OK
    assert status.json()["logs"] == [
        {"origin": log.origin, "verifier_key": log.vkey, "size": 0, "cosigned_at": None}
    ]
    human = run_cli(["witness", "status", "--dir", str(witness_dir)])
    assert log.origin in human.stdout
    assert "never" in human.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--origin", "o", "--key", "not a key"], "--key"),
        (["--origin", "has space", "--key", None], "--origin"),
    ],
)
def test_add_log_refuses_bad_input(witness_dir: Path, args: list[str | None], field: str) -> None:
    log = WitnessedLog.create()
    filled = [log.vkey if a is None else a for a in args]
    result = run_cli(["witness", "add-log", "--dir", str(witness_dir), *filled])
    assert result.exit_code == exits.USAGE
    assert field in result.stderr


def test_a_log_added_twice_is_refused(witness_dir: Path) -> None:
    log = WitnessedLog.create()
    args = ["witness", "add-log", "--dir", str(witness_dir), "--origin", log.origin, "--key", log.vkey]
    assert run_cli(args).exit_code == exits.OK
    assert run_cli(args).exit_code == exits.PRECONDITION


def test_plaintext_serve_is_refused_off_loopback(witness_dir: Path) -> None:
    result = run_cli(["witness", "serve", "--dir", str(witness_dir), "--listen", "0.0.0.0:0", "--insecure"])
    assert result.exit_code == exits.USAGE
    assert "--insecure" in result.stderr


class WitnessProcess:
    """``clearance witness serve`` as a user runs it, on a port it picks."""

    def __init__(self, directory: Path) -> None:
        self.process = subprocess.Popen(
            [*clearance_command(), "witness", "serve", "--dir", str(directory), "--listen", "127.0.0.1:0"],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        ready, _, _ = select.select([self.process.stderr], [], [], 60)
        assert ready, "the witness did not start"
        line = self.process.stderr.readline()
        assert "serving on 127.0.0.1:" in line, line
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        self.context = ssl.create_default_context(cafile=str(directory / "tls" / "ca.pem"))

    def post(self, body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)
        try:
            connection.request("POST", "/add-checkpoint", body=body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        assert self.process.stderr is not None
        self.process.stderr.close()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code


@pytest.fixture
def followed_log(witness_dir: Path) -> WitnessedLog:
    log = WitnessedLog.create()
    log.grow(100)
    assert (
        run_cli(
            ["witness", "add-log", "--dir", str(witness_dir), "--origin", log.origin, "--key", log.vkey]
        ).exit_code
        == 0
    )
    return log


def test_a_cosigned_checkpoint_survives_a_kill_and_the_witness_refuses_to_go_back(
    witness_dir: Path, followed_log: WitnessedLog
) -> None:
    first = WitnessProcess(witness_dir)
    status, cosignature = first.post(followed_log.request(0))
    assert status == 200
    assert cosignature.startswith("\u2014 ".encode())
    first.kill()  # no chance to flush anything after answering

    second = WitnessProcess(witness_dir)
    try:
        stale = second.post(followed_log.request(0))
        assert stale == (409, b"100\n")
        followed_log.grow(50)
        assert second.post(followed_log.request(100))[0] == 200
    finally:
        assert second.stop() == 0

    status_now = run_cli(["witness", "status", "--dir", str(witness_dir), "--json"]).json()
    assert status_now["logs"][0]["size"] == 150
