"""``clearance org``: organizations, their facility clearances, node enrollment tokens."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from cli import records
from cli.connection import credential_option, json_option, registry_client
from cli.output import emit, table

KINDS = ("government", "company", "university", "laboratory")


@click.group("org")
def org() -> None:
    """Organizations, their facility clearances, and node enrollment tokens."""


def _org_row(o: dict[str, Any]) -> list[Any]:
    facility = o.get("facility_clearance", {})
    clearance = facility.get("clearance", {})
    state = ("active" if facility.get("active") else "withdrawn") if facility else "none"
    return [
        o["id"],
        o.get("name"),
        records.enum_name("ORGANIZATION_KIND_", o.get("kind", "")),
        o.get("country"),
        clearance.get("level", "-"),
        state,
    ]


_HEADERS = ["id", "name", "kind", "country", "facility level", "facility"]


def _show_org(o: dict[str, Any]) -> str:
    return table([_org_row(o)], _HEADERS)


@org.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), required=True)
@click.option("--country", required=True, metavar="CODE")
@click.option("--idempotency-key", default="")
@credential_option
@json_option
def org_create(
    name: str,
    kind: str,
    country: str,
    idempotency_key: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Register an organization (government body, company, university, laboratory)."""
    from clearance.client.common import OrganizationKind

    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        created = client.organizations.create(
            name, kind=OrganizationKind(kind), country=country.upper(), idempotency_key=idempotency_key
        )
    emit(records.organization(created), json_output=json_output, human=_show_org)


@org.command("get")
@click.argument("organization_id")
@credential_option
@json_option
def org_get(
    organization_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show one organization."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        found = client.organizations.get(organization_id)
    emit(records.organization(found), json_output=json_output, human=_show_org)


@org.command("list")
@credential_option
@json_option
def org_list(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """List organizations."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        rows = [records.organization(o) for o in client.organizations.list()]
    emit(
        {"organizations": rows},
        json_output=json_output,
        human=lambda d: table([_org_row(o) for o in d["organizations"]], _HEADERS),
    )


@org.command("grant-facility")
@click.argument("organization_id")
@click.option("--level", required=True)
@click.option("--category", "categories", multiple=True, required=True, help="Repeatable.")
@click.option("--valid-until", metavar="YYYY-MM-DD", help="Default: ten years from today.")
@credential_option
@json_option
def org_grant(
    organization_id: str,
    level: str,
    categories: tuple[str, ...],
    valid_until: str | None,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Grant (or change) an organization's facility clearance."""
    until = (
        records.date_option(valid_until, "--valid-until")
        if valid_until
        else int(time.time()) + 10 * 365 * 86400
    )
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        granted = client.organizations.grant_facility(
            organization_id, level=level, categories=categories, valid_until=until
        )
    emit(records.organization(granted), json_output=json_output, human=_show_org)


@org.command("withdraw-facility")
@click.argument("organization_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def org_withdraw(
    organization_id: str,
    reason: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Withdraw a facility clearance: its people's credentials are suspended."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        withdrawn = client.organizations.withdraw_facility(organization_id, reason=reason)
    data: dict[str, Any] = {
        "organization": records.organization(withdrawn.organization),
        "suspended_credentials": withdrawn.suspended_credentials,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{_show_org(d['organization'])}\n{d['suspended_credentials']} credential(s) suspended"
        ),
    )


@org.command("enrollment-token")
@click.argument("organization_id")
@click.option("--ttl", default=86400, show_default=True, help="Seconds the token stays usable.")
@credential_option
@json_option
def org_token(
    organization_id: str, ttl: int, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """A one-time token with which the organization's node enrolls."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        token = client.organizations.create_enrollment_token(organization_id, ttl_seconds=ttl)
        registry = client.endpoint
    data: dict[str, Any] = {
        "token": token.token,
        "expires_at": token.expires_at,
        "root_fingerprint": token.root_fingerprint,
        "registry": registry,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"token             {d['token']}\nexpires           {records.when(d['expires_at'])}\n"
            f"root fingerprint  {d['root_fingerprint']}\n"
            f"On the node: clearance node init --dir DIR --registry {d['registry']} --root-fingerprint {d['root_fingerprint']} --token {d['token']}"
        ),
    )


@org.command("nodes")
@click.option("--org", "organization_id", default="")
@credential_option
@json_option
def org_nodes(
    organization_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """List enrolled nodes."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        rows = [records.node(n) for n in client.organizations.list_nodes(organization_id)]
    emit(
        {"nodes": rows},
        json_output=json_output,
        human=lambda d: table(
            [
                [n["id"], n.get("name"), n.get("organization_id"), records.when(n.get("enrolled_at"))]
                for n in d["nodes"]
            ],
            ["id", "name", "organization", "enrolled"],
        ),
    )
