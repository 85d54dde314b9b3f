"""``clearance staff``: staff accounts, each with a role and a key that never leaves its owner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli import records
from cli.connection import credential_option, json_option, read_credential, registry_client
from cli.output import emit, table

if TYPE_CHECKING:
    from clearance.keys import SigningKey

ROLES = ("administrator", "investigator", "adjudicator", "security_officer", "oversight")


@click.group("staff")
def staff() -> None:
    """Staff accounts: each has a role and a key that never leaves its owner."""


@staff.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--org", "organization_id", default="", help="Organization of a security officer.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the new staff credential (mode 0600).",
)
@credential_option
@json_option
def staff_create(
    name: str,
    role: str,
    organization_id: str,
    out: Path,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Create a staff account: a new key is generated here and only its public half is sent."""
    from clearance.client.common import Role

    key = _new_key(out)
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        created = client.staff.create(
            name, role=Role(role), organization_id=organization_id, public_jwk=json.dumps(key.public.jwk)
        )
        registry = client.endpoint
    _save_credential(out, credential, registry, created.id, role, key)
    data = {**records.staff(created), "credential": str(out)}
    emit(
        data,
        json_output=json_output,
        human=lambda d: f"staff {d['id']} ({role}) created; credential written to {d['credential']}",
    )


def _new_key(out: Path) -> SigningKey:
    """A fresh staff key, once ``out`` is known to be free.

    Raises:
        ConflictError: ``out`` exists.
    """
    from clearance.errors import ConflictError
    from clearance.keys import SigningKey

    if out.exists():
        raise ConflictError(f"{out} exists; choose another --out")
    return SigningKey.generate()


def _save_credential(
    out: Path, credential: Path, registry: str, principal: str, role: str, key: SigningKey
) -> None:
    """Write the staff credential of ``principal`` (mode 0600), reaching the registry as ``credential`` does."""
    from registry.setup import StaffCredential

    mine = read_credential(credential)
    StaffCredential(
        endpoint=registry,
        audience=str(mine["audience"]),
        principal=principal,
        role=role,
        key=key,
        ca_pem=str(mine.get("ca_pem", "")),
        tls=bool(mine.get("tls", True)),
    ).save(out)


@staff.command("reassign")
@click.argument("staff_id")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--org", "organization_id", default="", help="Organization of a security officer.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the account's new credential (mode 0600); its old key stops working.",
)
@credential_option
@json_option
def staff_reassign(
    staff_id: str,
    role: str,
    organization_id: str,
    out: Path,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Move a staff account to another role (a change of post), with a new key.

    The account keeps its id, so what it did before still counts: an
    investigator made adjudicator cannot decide what they investigated, an
    adjudicator moved to oversight cannot resolve the appeal of their decision.
    """
    from clearance.client.common import Role

    key = _new_key(out)
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        moved = client.staff.reassign(
            staff_id, role=Role(role), organization_id=organization_id, public_jwk=json.dumps(key.public.jwk)
        )
        registry = client.endpoint
    _save_credential(out, credential, registry, moved.id, role, key)
    data = {**records.staff(moved), "credential": str(out)}
    emit(
        data,
        json_output=json_output,
        human=lambda d: f"staff {d['id']} is now {role}; new credential written to {d['credential']}",
    )


@staff.command("list")
@credential_option
@json_option
def staff_list(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """List staff accounts."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        rows = [records.staff(s) for s in client.staff.list()]
    emit(
        {"staff": rows},
        json_output=json_output,
        human=lambda d: table(
            [
                [
                    s["id"],
                    s.get("name"),
                    records.enum_name("ROLE_", s.get("role", "")),
                    s.get("organization_id", "-"),
                    "disabled" if s.get("disabled") else "active",
                ]
                for s in d["staff"]
            ],
            ["id", "name", "role", "organization", "state"],
        ),
    )


@staff.command("disable")
@click.argument("staff_id")
@credential_option
@json_option
def staff_disable(
    staff_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Disable a staff account (its key stops working within seconds)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        disabled = client.staff.disable(staff_id)
    emit(records.staff(disabled), json_output=json_output, human=lambda s: f"staff {s['id']} disabled")


@staff.command("whoami")
@credential_option
@json_option
def staff_whoami(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """Who the registry thinks you are."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        data = records.identity(client.staff.who_am_i())
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{d['principal']} ({records.enum_name('ROLE_', d.get('role', ''))}) at registry {d.get('jurisdiction')}"
        ),
    )
