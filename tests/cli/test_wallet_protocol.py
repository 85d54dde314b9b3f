"""``clearance wallet receive`` and ``clearance wallet respond`` against issuer and verifier endpoints over HTTPS."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from clearance.keys import read_private_key
from cli import exits
from cli.qr_codes import terminal_qr, write_qr_png
from tests.cli.conftest import run_cli
from tests.factories import Holder
from tests.openid4vc_worlds import IssuerWorld, VerifierWorld


def new_wallet(tmp_path: Path) -> Path:
    wallet = tmp_path / "wallet"
    assert run_cli(["wallet", "init", "--wallet", str(wallet), "--alg", "ES256"]).exit_code == 0
    return wallet


def test_wallet_receive_redeems_an_offer_and_stores_the_credential(
    issuer: IssuerWorld, tmp_path: Path
) -> None:
    issuer.clock.now = int(time.time())  # the wallet proves possession at the real time
    wallet = new_wallet(tmp_path)
    made = issuer.offer()
    args = ["wallet", "receive", made.offer.uri(), "--ca", str(issuer.tls.ca), "--wallet", str(wallet)]

    done = run_cli([*args, "--json"], input=f"{made.tx_code}\n")
    assert done.exit_code == 0, done.stderr
    assert done.json()["clearance"]["level"] == "SECRET"
    shown = run_cli(["wallet", "show", "--wallet", str(wallet), "--json"]).json()
    assert [c["id"] for c in shown["credentials"]] == [done.json()["id"]]

    again = run_cli([*args, "--tx-code", made.tx_code or ""])
    assert again.exit_code != 0
    assert "invalid_grant" in again.stderr


def test_wallet_respond_answers_a_trusted_verifier_only(verifier: VerifierWorld, tmp_path: Path) -> None:
    wallet = new_wallet(tmp_path)
    holder = Holder(read_private_key(wallet / "holder.pem"))  # a credential bound to the wallet's key
    credential, _ = verifier.registry.issue(holder)
    source = tmp_path / "credential.sd-jwt"
    source.write_text(credential)
    assert run_cli(["wallet", "import", str(source), "--wallet", str(wallet)]).exit_code == 0
    started = verifier.start(disclose=("given_name",))
    respond = [
        "wallet",
        "respond",
        started.authorization_uri,
        "--ca",
        str(verifier.tls.ca),
        "--wallet",
        str(wallet),
    ]

    untrusted = run_cli(respond)
    assert untrusted.exit_code != 0
    assert "trust-verifier" in untrusted.stderr

    ca = tmp_path / "verifier-ca.pem"
    ca.write_bytes(x509.load_der_x509_certificate(verifier.ca_der).public_bytes(serialization.Encoding.PEM))
    assert run_cli(["wallet", "trust-verifier", str(ca), "--wallet", str(wallet)]).exit_code == 0

    declined = run_cli(respond, input="n\n")
    assert declined.exit_code == exits.FAILURE
    assert "given_name" in declined.stderr
    assert verifier.backend.decisions == []

    done = run_cli([*respond, "--yes", "--json"])
    assert done.exit_code == 0, done.stderr
    assert done.json()["disclosed"] == ["given_name"]
    assert [d for _, d in verifier.backend.decisions] == [{"decision": "allow", "level": "SECRET"}]


def test_offer_uris_become_qr_codes_in_the_terminal_and_as_png(tmp_path: Path) -> None:
    uri = "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fregistry.jp.example%2Fo%2F1"
    drawn = terminal_qr(uri)
    assert len(drawn.splitlines()) > 10
    write_qr_png(uri, tmp_path / "offer.png")
    png = (tmp_path / "offer.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert (tmp_path / "offer.png").stat().st_mode & 0o077 == 0
