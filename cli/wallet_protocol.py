"""The wallet speaks OpenID4VCI and OpenID4VP: receive a credential from an offer, answer a verifier.

    clearance wallet receive OFFER_URI [--tx-code CODE]
    clearance wallet respond REQUEST_URI [--verifier-ca CA.pem] [--yes]
    clearance wallet trust-verifier CA.pem

Which verifiers the wallet answers is decided on purpose: a request object must be signed by a
certificate that chains to a verifier CA the person trusts (``verifier-cas/`` in the wallet,
added with ``trust-verifier``, or ``--verifier-ca`` for one call), its client id must be that
certificate's hash, and the answer goes only to a name the certificate names. Before anything
is sent the wallet shows who asks and what would be disclosed, and asks for consent (``--yes``
gives it in advance, for scripts).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from cli.output import emit
from cli.wallet_commands import _json_option, _load_key, _stored, _wallet_option, credential_id

VERIFIER_CAS = "verifier-cas"


def _https_option(function: Any) -> Any:
    return click.option(
        "--ca",
        "ca_file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Trust only this CA for HTTPS (default: the system's trust store).",
    )(function)


def _http(ca_file: Path | None) -> Any:
    from clearance.openid4vc.holder_http import HolderHttp, tls_context

    return HolderHttp(tls_context(str(ca_file) if ca_file else None))


def _read_ca(path: Path) -> bytes:
    """DER of the first certificate of a PEM (or DER) file.

    Raises:
        InvalidArgumentError: not a certificate.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from clearance.errors import InvalidArgumentError

    data = path.read_bytes()
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as exc:
        raise InvalidArgumentError(str(path), "is not an X.509 certificate") from exc
    return cert.public_bytes(serialization.Encoding.DER)


@click.command("receive")
@click.argument("offer_uri")
@click.option("--tx-code", help="The transaction code sent to you by another channel (asked for if needed).")
@_https_option
@_wallet_option
@_json_option
def receive(
    offer_uri: str, tx_code: str | None, ca_file: Path | None, wallet_dir: Path, json_output: bool
) -> None:
    """Receive a credential from a credential offer (OpenID4VCI), proving this wallet's key."""
    from clearance.keys import atomic_write
    from clearance.openid4vc.holder_issuance import receive_credential, resolve_offer

    key = _load_key(wallet_dir)
    with _http(ca_file) as http:
        offer = resolve_offer(offer_uri, http)
        if offer.tx_code is not None and tx_code is None:
            description = offer.tx_code.description or "the transaction code"
            tx_code = click.prompt(f"{description} ({offer.tx_code.length} digits)", err=True)
        received = receive_credential(offer_uri, key, tx_code=tx_code, http=http, now=int(time.time()))
    identifier = credential_id(received.sd_jwt)
    atomic_write(
        wallet_dir / "credentials" / f"{identifier}.sd-jwt", (received.sd_jwt + "\n").encode(), mode=0o600
    )
    clearance = received.claims.clearance
    until = time.strftime("%Y-%m-%d", time.gmtime(received.claims.expires_at))
    data: dict[str, Any] = {
        "id": identifier,
        "issuer": received.issuer,
        "clearance": clearance.to_json(),
        "expires_at": received.claims.expires_at,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"received credential {d['id']} from {d['issuer']}: {clearance.jurisdiction} {clearance.level} "
            f"until {until}"
        ),
    )


@click.command("trust-verifier")
@click.argument("ca_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_wallet_option
@_json_option
def trust_verifier(ca_file: Path, wallet_dir: Path, json_output: bool) -> None:
    """Trust verifiers whose request-signing certificates this CA issued."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from clearance.keys import atomic_write

    _load_key(wallet_dir)
    der = _read_ca(ca_file)
    name = hashlib.sha256(der).hexdigest()[:16]
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    atomic_write(wallet_dir / VERIFIER_CAS / f"{name}.pem", pem)
    subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    emit(
        {"trusted": subject, "file": name},
        json_output=json_output,
        human=lambda d: f"now trusting verifiers of {d['trusted']}",
    )


def _trusted_cas(wallet_dir: Path, extra: tuple[Path, ...]) -> list[bytes]:
    folder = wallet_dir / VERIFIER_CAS
    files = sorted(folder.glob("*.pem")) if folder.is_dir() else []
    return [_read_ca(path) for path in [*files, *extra]]


@click.command("respond")
@click.argument("request_uri")
@click.option(
    "--verifier-ca",
    "verifier_cas",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Also trust verifiers certified by this CA, for this answer only (repeatable).",
)
@click.option("--yes", is_flag=True, help="Consent in advance to disclose what is asked (no prompt).")
@_https_option
@_wallet_option
@_json_option
def respond(
    request_uri: str,
    verifier_cas: tuple[Path, ...],
    yes: bool,
    ca_file: Path | None,
    wallet_dir: Path,
    json_output: bool,
) -> None:
    """Answer a verifier's presentation request (OpenID4VP), disclosing only what it asks for."""
    from clearance.errors import NotFoundError, PermissionDeniedError
    from clearance.openid4vc.holder_presentation import fetch_request, plan_response, send_response

    key = _load_key(wallet_dir)
    trusted = _trusted_cas(wallet_dir, verifier_cas)
    if not trusted:
        raise PermissionDeniedError(
            "this wallet trusts no verifier yet; run: clearance wallet trust-verifier CA.pem (or pass --verifier-ca)"
        )
    stored = list(_stored(wallet_dir).values())
    if not stored:
        raise NotFoundError(f"{wallet_dir} holds no credential; run: clearance wallet receive OFFER_URI")
    with _http(ca_file) as http:
        verified = fetch_request(request_uri, http=http, trusted_cas=trusted, now=int(time.time()))
        plan = plan_response(verified, stored)
        who = ", ".join(verified.verifier_names) or verified.verifier_subject
        shown = ", ".join(plan.disclose) or "nothing beyond your clearance"
        if not yes:
            click.confirm(f"{who} asks for your clearance and {shown}. Send it?", abort=True, err=True)
        send_response(plan, key, http=http, now=int(time.time()))
    data = {"verifier": who, "credential": credential_id(plan.credential), "disclosed": list(plan.disclose)}
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"presented {d['credential']} to {d['verifier']} (disclosed: {', '.join(d['disclosed']) or 'nothing beyond the clearance'})"
        ),
    )
