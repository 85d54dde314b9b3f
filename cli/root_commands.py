"""``clearance root``: k-of-n root documents and the offline side of signing ceremonies.

Nothing here opens a database or a network connection: these commands run on
the offline machine that holds a root key (or a token with one), with a
directory standing in for the removable media that carries requests in and
signatures out::

    clearance root init --out /media/root --jurisdiction JP --keys 3 --threshold 2
    clearance root sign bundle-v8.request.json --key /media/root/root-key-1.pem --out sig-1.json
    clearance root rotate --current /media/root/root-v1.json --out /media/root --generate 1
    clearance root assemble root-v2.request.json sig-*.json --root /media/root/root-v1.json --out root-v2.json
    clearance root verify --pin FINGERPRINT root-v1.json root-v2.json

Keys are named by a file path or an RFC 7512 ``pkcs11:`` URI; a token's PIN
comes from the URI's ``pin-source`` file or the environment variable named by
``--pin-env``, never from the command line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from clearance.bundle import TrustBundle, parse_threshold_bundle, verify_threshold_bundle
from clearance.ceremony import DetachedSignature, Kind, SigningRequest, assemble, assemble_root, sign_request
from clearance.changes import describe_payload, summarize_bundle_change, summarize_root_change
from clearance.encoding import parse_json_object
from clearance.errors import ConflictError, InvalidArgumentError
from clearance.keys import Alg, PublicKey, Signer, SigningKey, atomic_write, write_private_key
from clearance.pkcs11config import Pkcs11Config
from clearance.rootdoc import RootDocument, follow_root_chain
from clearance.signers import open_signer
from cli.output import emit, heading, printable, table

F = TypeVar("F", bound=Callable[..., Any])


def pkcs11_options(func: F) -> F:
    """``--pkcs11-module`` and ``--pin-env``: how ``pkcs11:`` key names are opened."""
    func = click.option(
        "--pin-env",
        metavar="NAME",
        envvar="CLEARANCE_PKCS11_PIN_ENV",
        help="Name of the environment variable holding the token PIN (for URIs without pin-source).",
    )(func)
    return click.option(
        "--pkcs11-module",
        metavar="PATH",
        envvar="CLEARANCE_PKCS11_MODULE",
        help="PKCS#11 module for URIs without module-path.",
    )(func)


def _config(pkcs11_module: str | None, pin_env: str | None) -> Pkcs11Config:
    return Pkcs11Config(default_module=pkcs11_module, pin_env=pin_env)


def _write_new(path: Path, data: Any) -> None:
    """Write a JSON document, refusing to replace one: a ceremony never overwrites its media."""
    if path.exists():
        raise ConflictError(f"{path} exists; move it away first (nothing was written)")
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def _read_json(path: Path, what: str) -> dict[str, Any]:
    return parse_json_object(path.read_bytes(), what=what, max_bytes=1 << 20)


def _read_root(path: Path) -> RootDocument:
    return RootDocument.parse(_read_json(path, "root document"))


def _public_key(name: str, config: Pkcs11Config) -> PublicKey:
    """An added root key: a public JWK file (``.json``) of an official's key, or a key we can open."""
    if name.endswith(".json"):
        return PublicKey.from_jwk(_read_json(Path(name), "public JWK"))
    return open_signer(name, config).public


@click.group("root")
def root() -> None:
    """Offline root keys: k-of-n root documents and signing ceremonies."""


@root.command("init")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory (the removable medium).",
)
@click.option("--jurisdiction", required=True, help="Two-letter code of the registry's country (JP).")
@click.option(
    "--keys",
    "count",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Keys to generate as files (when no --key is given).",
)
@click.option(
    "--threshold", type=click.IntRange(1, 16), default=1, show_default=True, help="Signatures required (k)."
)
@click.option(
    "--key", "key_names", multiple=True, metavar="FILE|pkcs11:URI", help="Use existing keys instead (repeat)."
)
@click.option("--alg", type=click.Choice(["EdDSA", "ES256"]), default="EdDSA", show_default=True)
@pkcs11_options
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def init(
    out: Path,
    jurisdiction: str,
    count: int,
    threshold: int,
    key_names: tuple[str, ...],
    alg: Alg,
    pkcs11_module: str | None,
    pin_env: str | None,
    json_output: bool,
) -> None:
    """Make root keys and the version-1 root document, signed by all of them."""
    config = _config(pkcs11_module, pin_env)
    target = out / "root-v1.json"
    if target.exists():
        raise ConflictError(f"{target} exists; this medium already holds a root")
    signers: list[Signer] = [open_signer(name, config) for name in key_names]
    written: list[str] = []
    if not key_names:
        for i in range(1, count + 1):
            path = out / f"root-key-{i}.pem"
            if path.exists():
                raise ConflictError(f"{path} exists; nothing was written")
            key = SigningKey.generate(alg)
            write_private_key(path, key)
            signers.append(key)
            written.append(str(path))
    if threshold > len(signers):
        raise InvalidArgumentError("--threshold", f"{threshold} is more than the {len(signers)} keys")
    document = RootDocument(jurisdiction, 1, threshold, tuple(s.public for s in signers), int(time.time()))
    signed = document.sign(signers)
    signed.verify_self_signed()
    _write_new(target, signed.to_json())
    emit(
        {
            "root_document": str(target),
            "fingerprint": signed.fingerprint,
            "version": 1,
            "threshold": threshold,
            "keys": [s.kid for s in signers],
            "key_files": written,
        },
        json_output=json_output,
    )


def _compare(online: tuple[str, ...], computed: list[str]) -> list[tuple[str, str]]:
    rows = [("ok" if line in computed else "NOT CONFIRMED HERE", printable(line)) for line in online]
    rows += [("NOT IN THE REQUEST'S SUMMARY", printable(line)) for line in computed if line not in online]
    return rows


def _computed_summary(request: SigningRequest, previous: Path) -> list[str]:
    if request.kind is Kind.ROOT:
        return summarize_root_change(_read_root(previous), RootDocument.from_payload(request.payload))
    if request.kind is Kind.BUNDLE:
        text = previous.read_text().strip()
        old = (
            parse_threshold_bundle(_read_json(previous, "bundle"))[0]
            if text.startswith("{")
            else TrustBundle.parse(text)[0]
        )
        return summarize_bundle_change(old, TrustBundle.from_payload(request.payload))
    raise InvalidArgumentError(
        "--previous", "only bundle and root requests are compared with a previous document"
    )


@root.command("sign")
@click.argument(
    "request_file", metavar="REQUEST", type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option(
    "--key", "key_name", required=True, metavar="FILE|pkcs11:URI", help="The root key to sign with."
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the detached signature.",
)
@click.option(
    "--previous",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The last signed document of this kind, to compute the changes here.",
)
@click.option("--yes", is_flag=True, help="Sign without asking (scripts).")
@pkcs11_options
def sign(
    request_file: Path,
    key_name: str,
    out: Path,
    previous: Path | None,
    yes: bool,
    pkcs11_module: str | None,
    pin_env: str | None,
) -> None:
    """Show what REQUEST asks to sign, decoded here, and write a detached signature.

    Refuses a request whose hash does not match its payload. No database, no network.
    """
    request = SigningRequest.loads(request_file.read_bytes())
    request.check_hash()
    rows = describe_payload(request.kind, request.payload)
    click.echo(heading(f"{request.kind.value} to sign: decoded from the payload on this machine"))
    click.echo(table([(name, printable(value)) for name, value in rows]))
    click.echo(f"payload sha256: {request.sha256}  (compare with the online machine's screen)")
    click.echo(heading("what changed, as the online side wrote it"))
    if previous is not None:
        click.echo(table(_compare(request.summary, _computed_summary(request, previous))))
    else:
        click.echo("\n".join(f"  {printable(line)}" for line in request.summary) or "  (no summary)")
        click.echo("  (give --previous to check these lines against the last signed document)")
    signer = open_signer(key_name, _config(pkcs11_module, pin_env))
    click.echo(f"signing with key {signer.kid} ({signer.alg})")
    if out.exists():
        raise ConflictError(f"{out} exists; nothing was signed")
    if not yes:
        click.confirm("Sign exactly this payload?", abort=True)
    signature = sign_request(request, signer)
    _write_new(out, signature.to_json())
    click.echo(f"wrote {out}")


@root.command("rotate")
@click.option(
    "--current",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="The root document in force.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for new key files and the request.",
)
@click.option("--generate", type=click.IntRange(0, 16), default=0, help="New keys to generate as files.")
@click.option(
    "--add-key", "added", multiple=True, metavar="FILE|pkcs11:URI|JWK.json", help="Add a key (repeat)."
)
@click.option(
    "--remove", "removed", multiple=True, metavar="KID", help="Remove a key by thumbprint (repeat)."
)
@click.option(
    "--threshold", type=click.IntRange(1, 16), help="Signatures required from now on (default: unchanged)."
)
@click.option("--alg", type=click.Choice(["EdDSA", "ES256"]), default="EdDSA", show_default=True)
@pkcs11_options
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def rotate(
    current: Path,
    out: Path,
    generate: int,
    added: tuple[str, ...],
    removed: tuple[str, ...],
    threshold: int | None,
    alg: Alg,
    pkcs11_module: str | None,
    pin_env: str | None,
    json_output: bool,
) -> None:
    """Make the next root document and its signing request (for k old and k new keys)."""
    config = _config(pkcs11_module, pin_env)
    old = _read_root(current)
    unknown = set(removed) - {k.thumbprint for k in old.keys}
    if unknown:
        raise InvalidArgumentError("--remove", f"not a key of root v{old.version}: {sorted(unknown)[0]}")
    version = old.version + 1
    request_path = out / f"root-v{version}.request.json"
    if request_path.exists():
        raise ConflictError(f"{request_path} exists; nothing was written")
    keys = [k for k in old.keys if k.thumbprint not in removed]
    keys += [_public_key(name, config) for name in added]
    written: list[str] = []
    for i in range(1, generate + 1):
        path = out / f"root-v{version}-key-{i}.pem"
        if path.exists():
            raise ConflictError(f"{path} exists; nothing was written")
        key = SigningKey.generate(alg)
        write_private_key(path, key)
        keys.append(key.public)
        written.append(str(path))
    new = RootDocument(
        old.jurisdiction, version, threshold or min(old.threshold, len(keys)), tuple(keys), int(time.time())
    )
    summary = summarize_root_change(old, new)
    request = SigningRequest.create(Kind.ROOT, new.unsigned(), summary, created=int(time.time()))
    _write_new(request_path, request.to_json())
    emit(
        {
            "request": str(request_path),
            "fingerprint": new.fingerprint,
            "summary": summary,
            "key_files": written,
        },
        json_output=json_output,
    )


@root.command("assemble")
@click.argument(
    "request_file", metavar="REQUEST", type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.argument(
    "signature_files",
    metavar="SIGNATURE...",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
)
@click.option(
    "--root",
    "root_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="The root document in force (for a rotation: the one it follows).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the signed document.",
)
def assemble_command(
    request_file: Path, signature_files: tuple[Path, ...], root_file: Path, out: Path
) -> None:
    """Combine detached signatures into the signed document; refuse anything short of k valid ones."""
    request = SigningRequest.loads(request_file.read_bytes())
    signatures = [DetachedSignature.loads(path.read_bytes()) for path in signature_files]
    current = _read_root(root_file)
    if request.kind is Kind.ROOT:
        document: dict[str, Any] = assemble_root(request, signatures, current).to_json()
    else:
        signed = assemble(request, signatures, [current])
        document = signed.to_json()
        if request.kind is Kind.BUNDLE:
            verify_threshold_bundle(document, current)
    _write_new(out, document)
    click.echo(f"wrote {out} ({len(signatures)} signatures)")


@root.command("verify")
@click.option(
    "--pin",
    "pinned",
    required=True,
    metavar="FINGERPRINT",
    help="The root fingerprint you trust (given out of band).",
)
@click.argument(
    "documents",
    metavar="ROOT_DOCUMENT...",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
def verify(pinned: str, documents: tuple[Path, ...], json_output: bool) -> None:
    """Follow a root history (oldest first) from a pinned fingerprint; print the root in force."""
    current = follow_root_chain(pinned, [_read_root(path) for path in documents])
    emit(
        {
            "jurisdiction": current.jurisdiction,
            "version": current.version,
            "fingerprint": current.fingerprint,
            "threshold": current.threshold,
            "keys": [k.thumbprint for k in current.keys],
        },
        json_output=json_output,
    )
