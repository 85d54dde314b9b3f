"""The CLI as a client of a registry: a staff credential file becomes an authenticated typed client.

A staff credential (written by ``registry init`` for the first administrator
and by ``staff create`` for everyone else) is a JSON file, mode 0600, holding
the registry's address, its TLS CA, the staff id and the private key that
signs each call's short-lived bearer token. It is found through
``--credential FILE`` or ``$CLEARANCE_CREDENTIAL``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clearance.errors import ClearanceError, InvalidArgumentError, StorageError

if TYPE_CHECKING:
    from clearance.client import RegistryClient


def registry_client(path: Path, *, endpoint: str | None = None, insecure: bool = False) -> RegistryClient:
    """A typed client of the registry, authenticated with the staff credential at ``path``.

    Raises:
        InvalidArgumentError: the file is missing or is not a staff credential.
        StorageError: the file is readable by others.
    """
    from clearance.access import TokenSource
    from clearance.client import RegistryClient
    from clearance.keys import SigningKey

    data = read_credential(path)
    try:
        key = SigningKey.from_private_jwk(data["private_jwk"])
        audience, principal = str(data["audience"]), str(data["principal"])
    except (KeyError, ClearanceError) as exc:
        raise InvalidArgumentError("--credential", f"{path} is not a staff credential ({exc})") from exc
    target = endpoint or str(data.get("registry", ""))
    plaintext = insecure or not data.get("tls", True)
    ca = str(data.get("ca_pem", "")).encode() or None
    token = TokenSource(key, principal=principal, audience=audience)
    return RegistryClient.connect(target, ca_pem=ca, insecure=plaintext, token=token)


def read_credential(path: Path) -> dict[str, Any]:
    """Read a credential JSON file, refusing one that others may read.

    Raises:
        InvalidArgumentError: missing or not JSON.
        StorageError: readable by group or others.
    """
    try:
        if path.stat().st_mode & 0o077:
            raise StorageError(f"{path} holds a private key and is readable by others; run: chmod 600 {path}")
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InvalidArgumentError(
            "--credential", f"{path} does not exist (set --credential or CLEARANCE_CREDENTIAL)"
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError("--credential", f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgumentError("--credential", f"{path} is not a credential file")
    return data


def credential_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--credential``, ``--registry`` and ``--insecure``: who calls which registry."""
    function = click.option(
        "--insecure",
        is_flag=True,
        help="Plaintext (only for a registry served with --insecure on loopback).",
    )(function)
    function = click.option(
        "--registry", "endpoint", metavar="HOST:PORT", help="Override the registry address."
    )(function)
    return click.option(
        "--credential",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="CLEARANCE_CREDENTIAL",
        default=lambda: os.environ.get("CLEARANCE_CREDENTIAL", "admin.json"),
        show_default="$CLEARANCE_CREDENTIAL or ./admin.json",
        help="Staff credential file.",
    )(function)


def json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")(
        function
    )
