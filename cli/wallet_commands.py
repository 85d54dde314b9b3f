"""A cleared person's wallet: a holder key, the credentials issued to it, and presentations.

The wallet is a directory (``--wallet``, ``$CLEARANCE_WALLET``, default
``~/.clearance/wallet``)::

    holder.pem            the private holder key (0600): it never leaves the wallet
    holder.jwk            its public JWK, to give the registry at issuance
    credentials/<id>.sd-jwt   credentials as issued, with all their disclosures

A presentation reveals nothing beyond the clearance unless the holder names
claims with ``--disclose`` (e.g. ``--disclose given_name,family_name``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import click

from cli.output import emit, status_word, table

DEFAULT_WALLET = Path.home() / ".clearance" / "wallet"


def _wallet_option(function: Any) -> Any:
    return click.option(
        "--wallet",
        "wallet_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("CLEARANCE_WALLET", str(DEFAULT_WALLET)),
        show_default="$CLEARANCE_WALLET or ~/.clearance/wallet",
        help="Wallet directory.",
    )(function)


def _json_option(function: Any) -> Any:
    return click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")(
        function
    )


def credential_id(sd_jwt: str) -> str:
    """A short stable id for a credential: the start of the hash of its signed part."""
    return hashlib.sha256(sd_jwt.split("~", 1)[0].encode()).hexdigest()[:12]


def _load_key(wallet_dir: Path) -> Any:
    from clearance.errors import InvalidArgumentError
    from clearance.keys import read_private_key

    path = wallet_dir / "holder.pem"
    if not path.exists():
        raise InvalidArgumentError(
            "--wallet", f"{wallet_dir} has no holder key; run: clearance wallet init --wallet {wallet_dir}"
        )
    return read_private_key(path)


def _describe(sd_jwt: str) -> dict[str, Any]:
    """What a stored credential says (its signed claims plus the disclosable names)."""
    from clearance.jws import decode_compact
    from clearance.sdjwt import Disclosure, split

    parts = split(sd_jwt)
    payload = decode_compact(parts.jwt, what="credential").payload
    disclosable = {}
    for encoded in parts.disclosures:
        disclosure = Disclosure.parse(encoded)
        if disclosure.name is not None:
            disclosable[disclosure.name] = disclosure.value
    return {
        "id": credential_id(sd_jwt),
        "issuer": payload.get("iss"),
        "vct": payload.get("vct"),
        "clearance": payload.get("clearance"),
        "status": payload.get("status", {}).get("status_list"),
        "issued_at": payload.get("iat"),
        "expires_at": payload.get("exp"),
        "disclosable": disclosable,
    }


def _stored(wallet_dir: Path) -> dict[str, str]:
    folder = wallet_dir / "credentials"
    if not folder.is_dir():
        return {}
    return {p.stem: p.read_text().strip() for p in sorted(folder.glob("*.sd-jwt"))}


@click.group("wallet")
def wallet() -> None:
    """Hold your clearance credentials and present them, revealing only what you choose."""


@wallet.command("init")
@_wallet_option
@click.option(
    "--alg",
    type=click.Choice(["EdDSA", "ES256"]),
    default="EdDSA",
    show_default=True,
    help="Holder key: Ed25519 or P-256.",
)
@_json_option
def init(wallet_dir: Path, alg: str, json_output: bool) -> None:
    """Create a wallet with a new holder key."""
    from clearance.errors import ConflictError
    from clearance.keys import SigningKey, atomic_write, write_private_key

    if (wallet_dir / "holder.pem").exists():
        raise ConflictError(f"{wallet_dir} already holds a wallet")
    key = SigningKey.generate(alg)  # type: ignore[arg-type]
    write_private_key(wallet_dir / "holder.pem", key)
    atomic_write(wallet_dir / "holder.jwk", json.dumps(key.public.jwk, indent=2).encode())
    (wallet_dir / "credentials").mkdir(mode=0o700, exist_ok=True)
    data = {
        "wallet": str(wallet_dir),
        "alg": key.alg,
        "key_thumbprint": key.kid,
        "public_jwk": str(wallet_dir / "holder.jwk"),
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"wallet created in {d['wallet']} ({d['alg']} key {d['key_thumbprint']})\ngive {d['public_jwk']} to your registry to be issued a credential"
        ),
    )


@wallet.command("import")
@click.argument("source", type=click.File("r"))
@_wallet_option
@_json_option
def import_credential(source: Any, wallet_dir: Path, json_output: bool) -> None:
    """Store a credential issued to this wallet's key (FILE, or - for stdin)."""
    from clearance.credentials import CredentialClaims
    from clearance.errors import InvalidArgumentError
    from clearance.jws import decode_compact
    from clearance.keys import atomic_write
    from clearance.sdjwt import resolve_claims, split

    key = _load_key(wallet_dir)
    sd_jwt = source.read().strip()
    parts = split(sd_jwt)
    if parts.key_binding is not None:
        raise InvalidArgumentError("FILE", "this is a presentation, not a credential as issued")
    jws = decode_compact(parts.jwt, what="credential", typ="dc+sd-jwt")
    claims = CredentialClaims.from_payload(resolve_claims(jws.payload, parts.disclosures))
    if claims.holder_key.thumbprint != key.kid:
        raise InvalidArgumentError("FILE", "this credential is bound to another key than this wallet's")
    identifier = credential_id(sd_jwt)
    atomic_write(wallet_dir / "credentials" / f"{identifier}.sd-jwt", (sd_jwt + "\n").encode(), mode=0o600)
    data = _describe(sd_jwt)
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"imported credential {d['id']}: {d['clearance']['jurisdiction']} {d['clearance']['level']} until {time.strftime('%Y-%m-%d', time.gmtime(d['expires_at']))}"
        ),
    )


@wallet.command("show")
@_wallet_option
@_json_option
def show(wallet_dir: Path, json_output: bool) -> None:
    """List the wallet's credentials and what each could disclose."""
    key = _load_key(wallet_dir)
    now = int(time.time())
    items = [_describe(sd) for sd in _stored(wallet_dir).values()]
    data = {"wallet": str(wallet_dir), "key_thumbprint": key.kid, "credentials": items}

    def human(d: dict[str, Any]) -> str:
        rows = [
            [
                c["id"],
                f"{c['clearance']['jurisdiction']} {c['clearance']['level']}",
                ", ".join(c["clearance"]["categories"]),
                status_word("expired", False)
                if c["expires_at"] <= now
                else time.strftime("%Y-%m-%d", time.gmtime(c["expires_at"])),
                ", ".join(c["disclosable"]) or "-",
            ]
            for c in d["credentials"]
        ]
        return f"wallet {d['wallet']} (key {d['key_thumbprint']})\n" + (
            table(rows, ["id", "clearance", "categories", "expires", "can disclose"])
            if rows
            else "no credentials yet"
        )

    emit(data, json_output=json_output, human=human)


@wallet.command("present")
@click.option("--nonce", required=True, help="The challenge from the verifying node.")
@click.option("--aud", "audience", required=True, help="The verifying node's identifier.")
@click.option("--disclose", default="", help="Comma-separated claims to reveal (default: none).")
@click.option("--credential", "chosen", default="", help="Credential id (default: the only or newest one).")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the presentation to a file."
)
@_wallet_option
@_json_option
def present(
    nonce: str,
    audience: str,
    disclose: str,
    chosen: str,
    out: Path | None,
    wallet_dir: Path,
    json_output: bool,
) -> None:
    """Present a credential to a node: key-bound to its nonce and audience."""
    from clearance.errors import InvalidArgumentError, NotFoundError
    from clearance.keys import atomic_write
    from clearance.sdjwt import present as make_presentation

    key = _load_key(wallet_dir)
    stored = _stored(wallet_dir)
    if not stored:
        raise NotFoundError(f"{wallet_dir} holds no credential; run: clearance wallet import FILE")
    if chosen:
        if chosen not in stored:
            raise NotFoundError(f"no credential {chosen!r} in the wallet")
        sd_jwt = stored[chosen]
    else:
        sd_jwt = max(stored.values(), key=lambda s: _describe(s)["issued_at"] or 0)
    names = [n.strip() for n in disclose.split(",") if n.strip()]
    available = _describe(sd_jwt)["disclosable"]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InvalidArgumentError(
            "--disclose", f"the credential cannot disclose {unknown}; it can disclose {sorted(available)}"
        )
    presentation = make_presentation(
        sd_jwt, key, disclose=names, audience=audience, nonce=nonce, issued_at=int(time.time())
    )
    if out is not None:
        atomic_write(out, (presentation + "\n").encode(), mode=0o600)
    data = {
        "credential": credential_id(sd_jwt),
        "disclosed": names,
        "audience": audience,
        "nonce": nonce,
        "presentation": presentation,
    }
    if out is not None or json_output:
        emit(
            data,
            json_output=json_output,
            human=lambda d: (
                f"presentation of {d['credential']} for {d['audience']} written to {out} (disclosing {', '.join(d['disclosed']) or 'nothing beyond the clearance'})"
            ),
        )
    else:
        click.echo(presentation)


def _register_protocol_commands() -> None:
    """The OpenID4VCI / OpenID4VP commands live in :mod:`cli.wallet_protocol`."""
    from cli.wallet_protocol import receive, respond, trust_verifier

    for command in (receive, respond, trust_verifier):
        wallet.add_command(command)


_register_protocol_commands()
