"""``clearance person``: enroll people (their data is sealed) and read personal data with a stated purpose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli import records
from cli.connection import credential_option, json_option, registry_client
from cli.output import emit, table

_HEADERS = ["id", "subject", "organization", "enrolled"]


@click.group("person")
def person() -> None:
    """Enroll people (their data is sealed) and read personal data with a stated purpose."""


def _person_row(p: dict[str, Any]) -> list[Any]:
    return [p["id"], p.get("subject"), p.get("organization_id", "-"), records.when(p.get("enrolled_at"))]


@person.command("enroll")
@click.option("--org", "organization_id", required=True)
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option("--birthdate", required=True, metavar="YYYY-MM-DD")
@click.option("--nationality", required=True, metavar="CODE")
@click.option(
    "--family",
    "family",
    multiple=True,
    metavar="RELATION:NAME:NATIONALITY[:cohabitant]",
    help="A family member or cohabitant (repeatable).",
)
@click.option("--idempotency-key", default="")
@credential_option
@json_option
def person_enroll(
    organization_id: str,
    given_name: str,
    family_name: str,
    birthdate: str,
    nationality: str,
    family: tuple[str, ...],
    idempotency_key: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Enroll a person of an organization; prints only their pseudonymous ids."""
    from clearance.client.personnel import FamilyMember, PersonalData

    members = []
    for entry in family:
        parts = entry.split(":")
        if len(parts) not in (3, 4):
            raise click.BadParameter("use RELATION:NAME:NATIONALITY[:cohabitant]", param_hint="--family")
        members.append(
            FamilyMember(
                relation=parts[0],
                name=parts[1],
                nationality=parts[2].upper(),
                cohabitant=len(parts) == 4 and parts[3] == "cohabitant",
            )
        )
    data = PersonalData(given_name, family_name, birthdate, nationality.upper(), tuple(members))
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        enrolled = client.personnel.enroll(organization_id, data, idempotency_key=idempotency_key)
    emit(
        records.person(enrolled),
        json_output=json_output,
        human=lambda p: table([_person_row(p)], _HEADERS),
    )


@person.command("get")
@click.argument("person_id")
@credential_option
@json_option
def person_get(
    person_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show a person's pseudonymous record (no personal data)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        found = client.personnel.get(person_id)
    emit(records.person(found), json_output=json_output, human=lambda p: table([_person_row(p)], _HEADERS))


@person.command("list")
@click.option("--org", "organization_id", default="")
@credential_option
@json_option
def person_list(
    organization_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """List people (pseudonymous records)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        rows = [records.person(p) for p in client.personnel.list(organization_id)]
    emit(
        {"people": rows},
        json_output=json_output,
        human=lambda d: table([_person_row(p) for p in d["people"]], _HEADERS),
    )


@person.command("read")
@click.argument("person_id")
@click.option("--purpose", required=True, help="Why you read it; written to the audit log.")
@credential_option
@json_option
def person_read(
    person_id: str, purpose: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Decrypt a person's data (adjudicators only; audited with who and why)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        data = client.personnel.read_personal_data(person_id, purpose=purpose)
    emit(records.personal_data(data), json_output=json_output)


@person.command("set-affiliation")
@click.argument("person_id")
@click.option("--org", "organization_id", default="", help="New organization; omit to end the affiliation.")
@click.option("--reason", required=True)
@credential_option
@json_option
def person_affiliation(
    person_id: str,
    organization_id: str,
    reason: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Move a person or end their affiliation (their credentials are suspended)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        moved = client.personnel.set_affiliation(person_id, organization_id=organization_id, reason=reason)
    data: dict[str, Any] = {
        "person": records.person(moved.person),
        "suspended_credentials": moved.suspended_credentials,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{d['person']['id']} now with {d['person'].get('organization_id', 'no organization')}; {d['suspended_credentials']} credential(s) suspended"
        ),
    )
