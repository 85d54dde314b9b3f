"""The witness over real HTTPS on loopback: c2sp.org/tlog-witness statuses, and its cosignatures checked by Go."""

from __future__ import annotations

import base64
import datetime
import http.client
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clearance.keys import SigningKey
from clearance.transparency.note import Ed25519NoteSigner, ed25519_public_bytes
from clearance.web import RunningWebServer, TlsPem, start
from oversight.witness import Witness
from oversight.witness_home import WitnessHome
from oversight.witness_http import WITNESS_LIMITS, witness_app
from tests.clearance.transparency.conftest import GoTlog
from tests.oversight.witnessed_log import WitnessedLog

NOW = datetime.datetime(2026, 9, 21, 12, tzinfo=datetime.UTC)


@dataclass
class RunningWitness:
    home: WitnessHome
    witness: Witness
    server: RunningWebServer
    context: ssl.SSLContext

    def post(
        self, body: bytes, path: str = "/add-checkpoint", method: str = "POST"
    ) -> tuple[int, str, bytes]:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.server.port, context=self.context, timeout=30
        )
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            return response.status, response.getheader("content-type") or "", response.read()
        finally:
            connection.close()


@pytest.fixture
def registry_log() -> WitnessedLog:
    log = WitnessedLog.create()
    log.grow(300)
    return log


@pytest.fixture
def running(tmp_path: Path, registry_log: WitnessedLog) -> Iterator[RunningWitness]:
    home = WitnessHome.init(tmp_path / "witness", "oversight.jp.example/witness", ["127.0.0.1"])
    store = home.store()
    store.add_log(registry_log.origin, registry_log.vkey)
    witness = Witness(store, home.signer(), lambda: NOW)
    server = start(
        witness_app(witness), "127.0.0.1:0", tls=TlsPem(home.tls.cert, home.tls.key), limits=WITNESS_LIMITS
    )
    yield RunningWitness(home, witness, server, ssl.create_default_context(cafile=str(home.tls.ca)))
    server.stop()


def test_cosignatures_from_https_verify_with_go(
    running: RunningWitness, registry_log: WitnessedLog, go_tlog: GoTlog
) -> None:
    status, content_type, _body = running.post(registry_log.request(0))
    assert status == 200
    assert content_type.startswith("text/plain")
    registry_log.grow(700)
    status, _, second = running.post(registry_log.request(300))
    assert status == 200

    signer = running.witness.signer
    cosigner = {
        "name": signer.name,
        "key": base64.b64encode(ed25519_public_bytes(signer.verifier.key)).decode(),
    }
    note = (registry_log.checkpoint() + second).decode()
    tampered = note.replace("\n1000\n", "\n1001\n")
    verdict = go_tlog.check(
        {
            "notes": [
                {"note": note, "vkeys": [registry_log.vkey], "cosigners": [cosigner]},
                {"note": tampered, "vkeys": [], "cosigners": [cosigner]},
            ]
        }
    )
    good, bad = verdict["notes"]
    assert good["ok"]
    assert len(good["verified"]) == 2
    assert not bad["ok"]


def test_each_refusal_has_the_specs_status_and_changes_nothing(
    running: RunningWitness, registry_log: WitnessedLog
) -> None:
    assert running.post(registry_log.request(0))[0] == 200
    stranger = WitnessedLog.create("registry.us.clearance.example/log")
    stranger.grow(2)
    fork = WitnessedLog(registry_log.origin, registry_log.signer)
    fork.grow(300, tag=b"fork")
    impostor = Ed25519NoteSigner(registry_log.origin, SigningKey.generate())
    registry_log.grow(10)
    cases = [
        (stranger.request(0), 404),
        (registry_log.request(300, note=registry_log.checkpoint(signer=impostor)), 403),
        (registry_log.request(5), 409),
        (fork.request(300), 409),  # split view at the same size
        (registry_log.request(300, proof=[]), 422),
        (registry_log.request(310, new=300, proof=[]), 400),
        (b"old x\n\n", 400),
    ]
    before = running.witness.store.logs()
    for body, expected in cases:
        status, content_type, answer = running.post(body)
        assert status == expected, answer
        if status == 409:
            assert content_type == "text/x.tlog.size"
            assert answer == b"300\n"
    assert running.witness.store.logs() == before


def test_other_paths_and_methods_and_huge_bodies_are_refused(running: RunningWitness) -> None:
    assert running.post(b"", path="/")[0] == 404
    assert running.post(b"", method="PUT")[0] == 405
    assert running.post(b"", method="GET")[0] == 405  # only POST on /add-checkpoint
    assert running.post(b"x" * 1_000_000)[0] == 413
