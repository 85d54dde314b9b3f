"""Registry staff commands: the CLI is a gRPC client of the registry (except init, serve, migrate).

Every command that returns data prints it for humans, or as one JSON object
with ``--json``. Heavy modules (grpc, the registry package) are imported
inside the commands so ``clearance --help`` stays fast.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import click

from cli.connection import RegistryClient, credential_option, json_option
from cli.output import emit, status_word, table

# -- helpers -------------------------------------------------------------------

ITEMS = (
    "family_and_cohabitants",
    "criminal_and_disciplinary_history",
    "information_handling_violations",
    "drug_abuse",
    "mental_illness",
    "alcohol_moderation",
    "financial_situation",
)
OUTCOMES = ("no_concern", "mitigated", "concern")
KINDS = ("government", "company", "university", "laboratory")
ROLES = ("administrator", "adjudicator", "security_officer", "oversight")


def _client(credential: Path, endpoint: str | None, insecure: bool) -> RegistryClient:
    return RegistryClient.from_credential(credential, endpoint=endpoint, insecure=insecure)


def _to_dict(message: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message, preserving_proto_field_name=True)


def _enum_name(prefix: str, value: str) -> str:
    return value.removeprefix(prefix).lower() if value else ""


def _date(value: str, option: str) -> int:
    try:
        parsed = datetime.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("must be a date YYYY-MM-DD", param_hint=option) from None
    return int(datetime.datetime(parsed.year, parsed.month, parsed.day, tzinfo=datetime.UTC).timestamp())


def _when(seconds: Any) -> str:
    if not seconds:
        return "-"
    if isinstance(seconds, str):  # MessageToDict renders Timestamps as RFC 3339
        return seconds.replace("T", " ").replace("Z", " UTC")
    return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _state_word(state: str) -> str:
    good = {"valid", "favorable", "serving", "in_force", "upheld", "intact"}
    bad = {"revoked", "unfavorable", "expired", "withdrawn", "terminated", "dismissed", "suspended"}
    return status_word(state, True if state in good else False if state in bad else None)


# -- registry: init, serve, migrate ---------------------------------------------


@click.group("registry")
def registry() -> None:
    """Run a national registry: create it, serve it, upgrade it, check its audit log."""


@registry.command("init")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Registry directory to create.",
)
@click.option("--jurisdiction", required=True, metavar="CODE", help="ISO 3166 code of the country, e.g. JP.")
@click.option("--database-url", metavar="URL", help="PostgreSQL URL; default: embedded SQLite in DIR.")
@click.option("--issuer", metavar="URL", help="Public URL identifying the registry (credential iss).")
@click.option(
    "--endpoint",
    default="127.0.0.1:7443",
    show_default=True,
    metavar="HOST:PORT",
    help="Where staff and nodes will reach the registry.",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help="Extra DNS name or IP for the TLS certificate (repeatable).",
)
@json_option
def init(
    directory: Path,
    jurisdiction: str,
    database_url: str | None,
    issuer: str | None,
    endpoint: str,
    hosts: tuple[str, ...],
    json_output: bool,
) -> None:
    """Create a registry: root and issuing keys, TLS, database schema, first administrator."""
    from registry.setup import init_registry

    ctx, _admin = init_registry(
        directory,
        jurisdiction=jurisdiction,
        database_url=database_url,
        issuer=issuer,
        endpoint=endpoint,
        hosts=list(hosts),
    )
    root = ctx.keys.root
    data = {
        "directory": str(directory),
        "jurisdiction": ctx.config.jurisdiction,
        "issuer": ctx.config.issuer,
        "database": "sqlite (embedded)" if ctx.config.database_url.startswith("sqlite") else "postgresql",
        "root_fingerprint": root.kid if root else "",
        "admin_credential": str(directory / "admin.json"),
        "endpoint": endpoint,
    }
    ctx.db.dispose()
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"Registry {d['jurisdiction']} created in {d['directory']}\n"
            f"  root fingerprint   {d['root_fingerprint']}   (give it to node operators out of band)\n"
            f"  administrator      {d['admin_credential']}   (keep it secret; move it to the administrator)\n"
            f"  database           {d['database']}\n"
            f"Next: clearance registry serve --dir {d['directory']} --listen {d['endpoint']}"
        ),
    )


@registry.command("serve")
@click.option(
    "--dir", "directory", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option("--listen", default="127.0.0.1:7443", show_default=True, metavar="HOST:PORT")
@click.option("--insecure", is_flag=True, help="Serve plaintext (refused unless HOST is loopback).")
@click.option("--metrics-port", type=int, metavar="PORT", help="Serve Prometheus metrics on 127.0.0.1:PORT.")
@click.option("--database-url", metavar="URL", help="Override the configured database.")
@click.option("--workers", default=256, show_default=True, help="Threads for calls and watch streams.")
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Replica processes sharing the port (SO_REUSEPORT); use one per core.",
)
def serve(
    directory: Path,
    listen: str,
    insecure: bool,
    metrics_port: int | None,
    database_url: str | None,
    workers: int,
    processes: int,
) -> None:
    """Serve the v1 API (with health checking and reflection) until SIGTERM or Ctrl-C."""
    import logging
    import sys

    from registry.api import server

    server.check_listen_address(listen, insecure=insecure)
    if processes > 1:
        from registry.api.replicas import run_replicas

        if listen.endswith(":0"):
            raise click.BadParameter("replicas share one port: give it explicitly", param_hint="--listen")
        child = [
            sys.executable,
            "-m",
            "cli.main",
            "registry",
            "serve",
            "--dir",
            str(directory),
            "--listen",
            listen,
        ]
        child += ["--workers", str(workers)] + (["--insecure"] if insecure else [])
        child += ["--database-url", database_url] if database_url else []
        sys.exit(run_replicas(child, processes, metrics_port=metrics_port))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)

    ctx = server.open_context(directory, database_url=database_url)
    running = server.start(
        ctx, listen, insecure=insecure, metrics_port=metrics_port, max_workers=workers, warm_signing=True
    )
    click.echo(
        f"registry {ctx.config.jurisdiction} serving on {listen.rpartition(':')[0]}:{running.port} ({'plaintext' if insecure else 'TLS'})",
        err=True,
    )
    server.serve_forever(running)


@registry.command("migrate")
@click.option(
    "--dir", "directory", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option("--database-url", metavar="URL", help="Override the configured database.")
@json_option
def migrate(directory: Path, database_url: str | None, json_output: bool) -> None:
    """Upgrade the database schema to this version."""
    from registry.setup import migrate as run_migrate

    before, after = run_migrate(directory, database_url)
    emit(
        {"before": before, "after": after},
        json_output=json_output,
        human=lambda d: f"schema {d['before'] or 'empty'} -> {d['after']}",
    )


# -- audit (also under `registry audit`) ------------------------------------------


@click.group("audit")
def audit() -> None:
    """Read and verify the registry's hash-chained audit log (administrators, oversight)."""


registry.add_command(audit)


@audit.command("verify")
@credential_option
@json_option
def audit_verify(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """Walk the whole chain; exit 3 if any event was edited, deleted or reordered."""
    from clearance.errors import Reason, VerificationError
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    report = _to_dict(client.call(client.stub("AuditService").VerifyAuditChain, pb.VerifyAuditChainRequest()))
    report.setdefault("intact", False)
    emit(
        report,
        json_output=json_output,
        human=lambda r: (
            f"audit chain {_state_word('intact') if r['intact'] else status_word('BROKEN', False)}: "
            f"{r.get('events_checked', 0)} events checked, head {r.get('head_hash', '')[:16]}"
            + ("" if r["intact"] else f"\n  first break at event {r.get('broken_at')}: {r.get('problem')}")
        ),
    )
    if not report["intact"]:
        raise VerificationError(
            Reason.MALFORMED,
            f"audit chain broken at event {report.get('broken_at')}: {report.get('problem')}",
        )


@audit.command("list")
@credential_option
@click.option("--after", default=0, help="Only events after this sequence number.")
@click.option("--action", default="", help="Only this action, e.g. credential.revoke.")
@click.option("--object", "object_id", default="", help="Only events about this object id.")
@click.option("--limit", default=100, show_default=True)
@json_option
def audit_list(
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    after: int,
    action: str,
    object_id: str,
    limit: int,
    json_output: bool,
) -> None:
    """List audit events (no personal data is ever in them)."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("AuditService").ListAuditEvents,
        pb.ListAuditEventsRequest(after_sequence=after, action=action, object_id=object_id, limit=limit),
    )
    events = [_to_dict(e) for e in response.events]
    emit(
        {"events": events},
        json_output=json_output,
        human=lambda d: table(
            [
                [e.get("sequence"), _when(e.get("at")), e.get("actor"), e.get("action"), e.get("object_id")]
                for e in d["events"]
            ],
            ["#", "at", "actor", "action", "object"],
        ),
    )


@audit.command("stats")
@credential_option
@json_option
def audit_stats(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """Aggregate counts by state (what oversight sees instead of files)."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    counts = dict(client.call(client.stub("AuditService").GetStatistics, pb.GetStatisticsRequest()).counts)
    emit(counts, json_output=json_output, human=lambda c: table(sorted(c.items()), ["count", "value"]))


# -- organizations ------------------------------------------------------------------


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
        _enum_name("ORGANIZATION_KIND_", o.get("kind", "")),
        o.get("country"),
        clearance.get("level", "-"),
        state,
    ]


def _show_org(o: dict[str, Any]) -> str:
    return table([_org_row(o)], ["id", "name", "kind", "country", "facility level", "facility"])


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
    from clearance.v1 import common_pb2 as common
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("OrganizationService").CreateOrganization,
        pb.CreateOrganizationRequest(
            name=name,
            kind=common.OrganizationKind.Value(f"ORGANIZATION_KIND_{kind.upper()}"),
            country=country.upper(),
            idempotency_key=idempotency_key,
        ),
    )
    emit(_to_dict(response.organization), json_output=json_output, human=_show_org)


@org.command("get")
@click.argument("organization_id")
@credential_option
@json_option
def org_get(
    organization_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show one organization."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("OrganizationService").GetOrganization, pb.GetOrganizationRequest(id=organization_id)
    )
    emit(_to_dict(response.organization), json_output=json_output, human=_show_org)


@org.command("list")
@credential_option
@json_option
def org_list(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """List organizations."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("OrganizationService").ListOrganizations, pb.ListOrganizationsRequest()
    )
    rows = [_to_dict(o) for o in response.organizations]
    emit(
        {"organizations": rows},
        json_output=json_output,
        human=lambda d: table(
            [_org_row(o) for o in d["organizations"]],
            ["id", "name", "kind", "country", "facility level", "facility"],
        ),
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
    from google.protobuf.timestamp_pb2 import Timestamp

    from clearance.v1 import registry_pb2 as pb

    until = _date(valid_until, "--valid-until") if valid_until else int(time.time()) + 10 * 365 * 86400
    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("OrganizationService").GrantFacilityClearance,
        pb.GrantFacilityClearanceRequest(
            organization_id=organization_id,
            level=level,
            categories=list(categories),
            valid_until=Timestamp(seconds=until),
        ),
    )
    emit(_to_dict(response.organization), json_output=json_output, human=_show_org)


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
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("OrganizationService").WithdrawFacilityClearance,
        pb.WithdrawFacilityClearanceRequest(organization_id=organization_id, reason=reason),
    )
    data = {
        "organization": _to_dict(response.organization),
        "suspended_credentials": response.suspended_credentials,
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
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("OrganizationService").CreateEnrollmentToken,
        pb.CreateEnrollmentTokenRequest(organization_id=organization_id, ttl_seconds=ttl),
    )
    data = {
        "token": response.token,
        "expires_at": response.expires_at.seconds,
        "root_fingerprint": response.root_fingerprint,
        "registry": client.endpoint,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"token             {d['token']}\nexpires           {_when(d['expires_at'])}\n"
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
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("OrganizationService").ListNodes, pb.ListNodesRequest(organization_id=organization_id)
    )
    rows = [_to_dict(n) for n in response.nodes]
    emit(
        {"nodes": rows},
        json_output=json_output,
        human=lambda d: table(
            [
                [n["id"], n.get("name"), n.get("organization_id"), _when(n.get("enrolled_at"))]
                for n in d["nodes"]
            ],
            ["id", "name", "organization", "enrolled"],
        ),
    )


# -- staff -------------------------------------------------------------------------


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
    from clearance.errors import ConflictError
    from clearance.keys import SigningKey
    from clearance.v1 import common_pb2 as common
    from clearance.v1 import registry_pb2 as pb
    from cli.connection import read_credential
    from registry.setup import StaffCredential

    if out.exists():
        raise ConflictError(f"{out} exists; choose another --out")
    key = SigningKey.generate()
    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("StaffService").CreateStaff,
        pb.CreateStaffRequest(
            name=name,
            role=common.Role.Value(f"ROLE_{role.upper()}"),
            organization_id=organization_id,
            public_jwk=json.dumps(key.public.jwk),
        ),
    )
    mine = read_credential(credential)
    StaffCredential(
        endpoint=client.endpoint,
        audience=str(mine["audience"]),
        principal=response.staff.id,
        role=role,
        key=key,
        ca_pem=str(mine.get("ca_pem", "")),
        tls=bool(mine.get("tls", True)),
    ).save(out)
    data = {**_to_dict(response.staff), "credential": str(out)}
    emit(
        data,
        json_output=json_output,
        human=lambda d: f"staff {d['id']} ({role}) created; credential written to {d['credential']}",
    )


@staff.command("list")
@credential_option
@json_option
def staff_list(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """List staff accounts."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    rows = [
        _to_dict(s) for s in client.call(client.stub("StaffService").ListStaff, pb.ListStaffRequest()).staff
    ]
    emit(
        {"staff": rows},
        json_output=json_output,
        human=lambda d: table(
            [
                [
                    s["id"],
                    s.get("name"),
                    _enum_name("ROLE_", s.get("role", "")),
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
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(client.stub("StaffService").DisableStaff, pb.DisableStaffRequest(id=staff_id))
    emit(_to_dict(response.staff), json_output=json_output, human=lambda s: f"staff {s['id']} disabled")


@staff.command("whoami")
@credential_option
@json_option
def staff_whoami(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """Who the registry thinks you are."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    data = _to_dict(client.call(client.stub("StaffService").WhoAmI, pb.WhoAmIRequest()))
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{d['principal']} ({_enum_name('ROLE_', d.get('role', ''))}) at registry {d.get('jurisdiction')}"
        ),
    )


# -- people ---------------------------------------------------------------------------


@click.group("person")
def person() -> None:
    """Enroll people (their data is sealed) and read personal data with a stated purpose."""


def _person_row(p: dict[str, Any]) -> list[Any]:
    return [p["id"], p.get("subject"), p.get("organization_id", "-"), _when(p.get("enrolled_at"))]


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
    from clearance.v1 import registry_pb2 as pb

    members = []
    for entry in family:
        parts = entry.split(":")
        if len(parts) not in (3, 4):
            raise click.BadParameter("use RELATION:NAME:NATIONALITY[:cohabitant]", param_hint="--family")
        members.append(
            pb.FamilyMember(
                relation=parts[0],
                name=parts[1],
                nationality=parts[2].upper(),
                cohabitant=len(parts) == 4 and parts[3] == "cohabitant",
            )
        )
    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("PersonnelService").EnrollPerson,
        pb.EnrollPersonRequest(
            organization_id=organization_id,
            personal_data=pb.PersonalData(
                given_name=given_name,
                family_name=family_name,
                birthdate=birthdate,
                nationality=nationality.upper(),
                family=members,
            ),
            idempotency_key=idempotency_key,
        ),
    )
    emit(
        _to_dict(response.person),
        json_output=json_output,
        human=lambda p: table([_person_row(p)], ["id", "subject", "organization", "enrolled"]),
    )


@person.command("get")
@click.argument("person_id")
@credential_option
@json_option
def person_get(
    person_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show a person's pseudonymous record (no personal data)."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(client.stub("PersonnelService").GetPerson, pb.GetPersonRequest(id=person_id))
    emit(
        _to_dict(response.person),
        json_output=json_output,
        human=lambda p: table([_person_row(p)], ["id", "subject", "organization", "enrolled"]),
    )


@person.command("list")
@click.option("--org", "organization_id", default="")
@credential_option
@json_option
def person_list(
    organization_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """List people (pseudonymous records)."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    rows = [
        _to_dict(p)
        for p in client.call(
            client.stub("PersonnelService").ListPeople, pb.ListPeopleRequest(organization_id=organization_id)
        ).people
    ]
    emit(
        {"people": rows},
        json_output=json_output,
        human=lambda d: table(
            [_person_row(p) for p in d["people"]], ["id", "subject", "organization", "enrolled"]
        ),
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
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("PersonnelService").ReadPersonalData,
        pb.ReadPersonalDataRequest(person_id=person_id, purpose=purpose),
    )
    emit(_to_dict(response.personal_data), json_output=json_output)


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
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("PersonnelService").SetAffiliation,
        pb.SetAffiliationRequest(person_id=person_id, organization_id=organization_id, reason=reason),
    )
    data = {"person": _to_dict(response.person), "suspended_credentials": response.suspended_credentials}
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{d['person']['id']} now with {d['person'].get('organization_id', 'no organization')}; {d['suspended_credentials']} credential(s) suspended"
        ),
    )


# -- assessment -------------------------------------------------------------------------


@click.group("assessment")
def assessment() -> None:
    """The aptitude assessment: consent, the seven findings, decision, notice."""


def _show_assessment(a: dict[str, Any]) -> str:
    lines = [
        f"assessment {a['id']}  {_state_word(_enum_name('ASSESSMENT_STATE_', a.get('state', '')))}",
        f"  person       {a.get('person_id')}",
        f"  requested    {a.get('level')} {', '.join(a.get('categories', []))}",
        f"  consent      {_when(a.get('consent_at'))}",
    ]
    if a.get("decision"):
        lines.append(
            f"  decision     {_enum_name('DECISION_', a['decision'])} on {_when(a.get('decided_at'))}"
        )
        lines.append(f"  valid until  {_when(a.get('valid_until'))}")
    for reason in a.get("reasons", []):
        lines.append(f"  reason       {reason}")
    findings = a.get("findings", [])
    if findings:
        lines.append("  findings:")
        lines.append(
            "\n".join(
                "    " + row
                for row in table(
                    [
                        [
                            _enum_name("ASSESSMENT_ITEM_", f["item"]),
                            _enum_name("FINDING_OUTCOME_", f.get("outcome", "")),
                            f.get("summary", ""),
                        ]
                        for f in findings
                    ]
                ).splitlines()
            )
        )
    return "\n".join(lines)


def _assessment_call(
    method: str, request: Any, credential: Path, endpoint: str | None, insecure: bool
) -> Any:
    client = _client(credential, endpoint, insecure)
    return client.call(getattr(client.stub("AssessmentService"), method), request)


@assessment.command("open")
@click.argument("person_id")
@click.option("--level", required=True)
@click.option("--category", "categories", multiple=True, required=True)
@click.option("--idempotency-key", default="")
@credential_option
@json_option
def assessment_open(
    person_id: str,
    level: str,
    categories: tuple[str, ...],
    idempotency_key: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Open an assessment of a person for a level and categories."""
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "OpenAssessment",
        pb.OpenAssessmentRequest(
            person_id=person_id, level=level, categories=list(categories), idempotency_key=idempotency_key
        ),
        credential,
        endpoint,
        insecure,
    )
    emit(_to_dict(response.assessment), json_output=json_output, human=_show_assessment)


@assessment.command("consent")
@click.argument("assessment_id")
@click.option("--evidence", required=True, help="How consent was given, e.g. 'signed form 2026-11-02'.")
@credential_option
@json_option
def assessment_consent(
    assessment_id: str,
    evidence: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Record the person's consent (nothing else can be recorded before it)."""
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "RecordConsent",
        pb.RecordConsentRequest(assessment_id=assessment_id, evidence=evidence),
        credential,
        endpoint,
        insecure,
    )
    emit(_to_dict(response.assessment), json_output=json_output, human=_show_assessment)


@assessment.command("withdraw")
@click.argument("assessment_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def assessment_withdraw(
    assessment_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Withdraw consent: stops the assessment, or suspends the resulting credentials."""
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "WithdrawConsent",
        pb.WithdrawConsentRequest(assessment_id=assessment_id, reason=reason),
        credential,
        endpoint,
        insecure,
    )
    data = {
        "assessment": _to_dict(response.assessment),
        "suspended_credentials": response.suspended_credentials,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{_show_assessment(d['assessment'])}\n{d['suspended_credentials']} credential(s) suspended"
        ),
    )


@assessment.command("finding")
@click.argument("assessment_id")
@click.option("--item", type=click.Choice(ITEMS), required=True, help="One of the seven items of the law.")
@click.option("--outcome", type=click.Choice(OUTCOMES), required=True)
@click.option("--summary", required=True)
@credential_option
@json_option
def assessment_finding(
    assessment_id: str,
    item: str,
    outcome: str,
    summary: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Record the finding for one of the seven items."""
    from clearance.v1 import common_pb2 as common
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "RecordFinding",
        pb.RecordFindingRequest(
            assessment_id=assessment_id,
            item=common.AssessmentItem.Value(f"ASSESSMENT_ITEM_{item.upper()}"),
            outcome=common.FindingOutcome.Value(f"FINDING_OUTCOME_{outcome.upper()}"),
            summary=summary,
        ),
        credential,
        endpoint,
        insecure,
    )
    emit(_to_dict(response.assessment), json_output=json_output, human=_show_assessment)


@assessment.command("decide")
@click.argument("assessment_id")
@click.option("--favorable/--unfavorable", required=True)
@click.option(
    "--reason", "reasons", multiple=True, required=True, help="Reasons given to the person (repeatable)."
)
@credential_option
@json_option
def assessment_decide(
    assessment_id: str,
    favorable: bool,
    reasons: tuple[str, ...],
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Decide, once all seven findings are in; the notice to the person is written."""
    from clearance.v1 import common_pb2 as common
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "DecideAssessment",
        pb.DecideAssessmentRequest(
            assessment_id=assessment_id,
            decision=common.DECISION_FAVORABLE if favorable else common.DECISION_UNFAVORABLE,
            reasons=list(reasons),
        ),
        credential,
        endpoint,
        insecure,
    )
    data = {"assessment": _to_dict(response.assessment), "notice": _to_dict(response.notice)}
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{_show_assessment(d['assessment'])}\nnotice {d['notice']['id']}: {d['notice'].get('appeal_instructions', '')}"
        ),
    )


@assessment.command("get")
@click.argument("assessment_id")
@credential_option
@json_option
def assessment_get(
    assessment_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show an assessment (what you see depends on your role)."""
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "GetAssessment", pb.GetAssessmentRequest(id=assessment_id), credential, endpoint, insecure
    )
    emit(_to_dict(response.assessment), json_output=json_output, human=_show_assessment)


@assessment.command("list")
@click.option("--person", "person_id", default="")
@credential_option
@json_option
def assessment_list(
    person_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """List assessments (states and decisions only)."""
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "ListAssessments", pb.ListAssessmentsRequest(person_id=person_id), credential, endpoint, insecure
    )
    rows = [_to_dict(a) for a in response.assessments]
    emit(
        {"assessments": rows},
        json_output=json_output,
        human=lambda d: table(
            [
                [
                    a["id"],
                    a.get("person_id"),
                    a.get("level"),
                    _state_word(_enum_name("ASSESSMENT_STATE_", a.get("state", ""))),
                ]
                for a in d["assessments"]
            ],
            ["id", "person", "level", "state"],
        ),
    )


@assessment.command("notice")
@click.argument("assessment_id")
@credential_option
@json_option
def assessment_notice(
    assessment_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show the decision notice sent to the person."""
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "GetNotice", pb.GetNoticeRequest(assessment_id=assessment_id), credential, endpoint, insecure
    )
    emit(_to_dict(response.notice), json_output=json_output)


# -- appeal ------------------------------------------------------------------------------


@click.group("appeal")
def appeal() -> None:
    """Appeals of unfavorable decisions, resolved by the independent oversight body."""


def _show_appeal(a: dict[str, Any]) -> str:
    return table(
        [
            [
                a["id"],
                a.get("assessment_id"),
                _state_word(_enum_name("APPEAL_STATE_", a.get("state", ""))),
                _when(a.get("filed_at")),
                a.get("resolution", ""),
            ]
        ],
        ["id", "assessment", "state", "filed", "resolution"],
    )


@appeal.command("file")
@click.argument("assessment_id")
@click.option("--grounds", required=True)
@credential_option
@json_option
def appeal_file(
    assessment_id: str,
    grounds: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """File an appeal of an unfavorable decision."""
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "FileAppeal",
        pb.FileAppealRequest(assessment_id=assessment_id, grounds=grounds),
        credential,
        endpoint,
        insecure,
    )
    emit(_to_dict(response.appeal), json_output=json_output, human=_show_appeal)


@appeal.command("resolve")
@click.argument("appeal_id")
@click.option(
    "--uphold/--dismiss", required=True, help="Uphold: set the decision aside and reopen the assessment."
)
@click.option("--resolution", required=True)
@credential_option
@json_option
def appeal_resolve(
    appeal_id: str,
    uphold: bool,
    resolution: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Resolve an appeal (oversight only)."""
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "ResolveAppeal",
        pb.ResolveAppealRequest(appeal_id=appeal_id, uphold=uphold, resolution=resolution),
        credential,
        endpoint,
        insecure,
    )
    data = {"appeal": _to_dict(response.appeal), "assessment": _to_dict(response.assessment)}
    emit(
        data,
        json_output=json_output,
        human=lambda d: f"{_show_appeal(d['appeal'])}\n{_show_assessment(d['assessment'])}",
    )


@appeal.command("list")
@click.option("--open", "only_open", is_flag=True, help="Only open appeals.")
@credential_option
@json_option
def appeal_list(
    only_open: bool, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """List appeals."""
    from clearance.v1 import common_pb2 as common
    from clearance.v1 import registry_pb2 as pb

    response = _assessment_call(
        "ListAppeals",
        pb.ListAppealsRequest(
            state=common.APPEAL_STATE_OPEN if only_open else common.APPEAL_STATE_UNSPECIFIED
        ),
        credential,
        endpoint,
        insecure,
    )
    rows = [_to_dict(a) for a in response.appeals]
    emit(
        {"appeals": rows},
        json_output=json_output,
        human=lambda d: "\n".join(_show_appeal(a) for a in d["appeals"]) or "no appeals",
    )


# -- credential ------------------------------------------------------------------------------


@click.group("credential")
def credential_group() -> None:
    """Issue personnel and facility credentials; suspend, reinstate, revoke."""


credential = credential_group


def _credential_row(c: dict[str, Any]) -> list[Any]:
    clearance = c.get("clearance", {})
    return [
        c["id"],
        c.get("kind"),
        clearance.get("level"),
        _state_word(_enum_name("CREDENTIAL_STATE_", c.get("state", ""))),
        _when(c.get("expires_at")),
        c.get("state_reason", ""),
    ]


_HEADERS = ["id", "kind", "level", "state", "expires", "reason"]


def _holder_jwk(holder_key: Path | None, wallet: Path | None) -> str:
    from clearance.errors import InvalidArgumentError

    if wallet is not None:
        holder_key = wallet / "holder.jwk"
    if holder_key is None:
        raise InvalidArgumentError(
            "--holder-key", "give the holder's public key (--holder-key FILE or --wallet DIR)"
        )
    try:
        jwk = json.loads(holder_key.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError("--holder-key", f"cannot read a JWK from {holder_key}: {exc}") from exc
    if not isinstance(jwk, dict):
        raise InvalidArgumentError("--holder-key", f"{holder_key} is not a JWK")
    return json.dumps({k: v for k, v in jwk.items() if k != "d"})


@credential_group.command("issue")
@click.argument("assessment_id")
@click.option(
    "--holder-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The holder's public JWK file.",
)
@click.option(
    "--wallet",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A wallet directory (uses its public key).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the SD-JWT here (for the holder's wallet).",
)
@click.option("--idempotency-key", default="")
@credential_option
@json_option
def credential_issue(
    assessment_id: str,
    holder_key: Path | None,
    wallet: Path | None,
    out: Path | None,
    idempotency_key: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Issue a personnel credential for a favorable assessment, bound to the holder's key."""
    from clearance.keys import atomic_write
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("CredentialService").IssueCredential,
        pb.IssueCredentialRequest(
            assessment_id=assessment_id,
            holder_jwk=_holder_jwk(holder_key, wallet),
            idempotency_key=idempotency_key,
        ),
    )
    if out is not None:
        atomic_write(out, response.sd_jwt.encode(), mode=0o600)
    data = {
        "credential": _to_dict(response.credential),
        "sd_jwt": response.sd_jwt,
        "written_to": str(out) if out else None,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            table([_credential_row(d["credential"])], _HEADERS)
            + (f"\nSD-JWT written to {d['written_to']}" if d["written_to"] else f"\n{d['sd_jwt']}")
        ),
    )


@credential_group.command("bulk-issue")
@click.argument("requests_file", type=click.File("r"))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON lines of what was issued (0600).",
)
@click.option(
    "--batch", default=1000, show_default=True, type=click.IntRange(1, 10_000), help="Requests per call."
)
@credential_option
@json_option
def credential_bulk_issue(
    requests_file: Any,
    out: Path,
    batch: int,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Issue many credentials (loading an existing cleared population), in batches, with a progress bar.

    REQUESTS_FILE (or - for stdin) holds one JSON object per line:
    {"assessment_id": "asm_...", "holder_jwk": {...public JWK...}, "idempotency_key": "optional"}.
    Each batch is all or nothing; with idempotency keys a rerun after a failure
    returns what was already issued instead of issuing twice.
    """
    from clearance.errors import InvalidArgumentError
    from clearance.keys import atomic_write
    from clearance.v1 import registry_pb2 as pb
    from cli.output import progress_bar

    requests = []
    for number, line in enumerate(requests_file, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            requests.append(
                pb.IssueCredentialRequest(
                    assessment_id=str(item["assessment_id"]),
                    holder_jwk=json.dumps(item["holder_jwk"]),
                    idempotency_key=str(item.get("idempotency_key", "")),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgumentError(
                f"REQUESTS_FILE line {number}", f"not a request object: {exc}"
            ) from exc
    client = _client(credential, endpoint, insecure)
    issued: list[dict[str, Any]] = []
    started = time.monotonic()

    def write_issued() -> None:
        atomic_write(out, "".join(json.dumps(i) + "\n" for i in issued).encode(), mode=0o600)

    try:
        with progress_bar("issuing", len(requests)) as advance:
            for start in range(0, len(requests), batch):
                chunk = requests[start : start + batch]
                response = client.call(
                    client.stub("CredentialService").BulkIssueCredentials,
                    pb.BulkIssueCredentialsRequest(requests=chunk),
                    timeout=300,
                )
                for request, result in zip(chunk, response.results, strict=True):
                    issued.append(
                        {
                            "assessment_id": request.assessment_id,
                            "credential_id": result.credential.id,
                            "sd_jwt": result.sd_jwt,
                        }
                    )
                advance(len(chunk))
    except BaseException:
        # The batches that went through were issued: their credentials must not be lost
        # with the one that failed (without idempotency keys a rerun cannot return them).
        if issued:
            write_issued()
            click.echo(
                f"{len(issued)} of {len(requests)} issued before the failure; written to {out}",
                err=True,
            )
        raise
    elapsed = time.monotonic() - started
    write_issued()
    data = {
        "issued": len(issued),
        "seconds": round(elapsed, 2),
        "per_second": round(len(issued) / elapsed, 1) if elapsed else None,
        "written_to": str(out),
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: f"issued {d['issued']} credentials in {d['seconds']}s; written to {d['written_to']}",
    )


@credential_group.command("issue-facility")
@click.argument("organization_id")
@click.option("--node", "node_id", required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path))
@credential_option
@json_option
def credential_issue_facility(
    organization_id: str,
    node_id: str,
    out: Path | None,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Issue an organization's facility credential bound to its node's key."""
    from clearance.keys import atomic_write
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("CredentialService").IssueFacilityCredential,
        pb.IssueFacilityCredentialRequest(organization_id=organization_id, node_id=node_id),
    )
    if out is not None:
        atomic_write(out, response.sd_jwt.encode(), mode=0o600)
    data = {"credential": _to_dict(response.credential), "sd_jwt": response.sd_jwt}
    emit(data, json_output=json_output, human=lambda d: table([_credential_row(d["credential"])], _HEADERS))


@credential_group.command("get")
@click.argument("credential_id")
@credential_option
@json_option
def credential_get(
    credential_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show a credential's record and state."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("CredentialService").GetCredential, pb.GetCredentialRequest(id=credential_id)
    )
    emit(
        _to_dict(response.credential),
        json_output=json_output,
        human=lambda c: table([_credential_row(c)], _HEADERS),
    )


@credential_group.command("list")
@click.option("--person", "person_id", default="")
@click.option("--org", "organization_id", default="")
@credential_option
@json_option
def credential_list(
    person_id: str,
    organization_id: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """List credentials."""
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    response = client.call(
        client.stub("CredentialService").ListCredentials,
        pb.ListCredentialsRequest(person_id=person_id, organization_id=organization_id),
    )
    rows = [_to_dict(c) for c in response.credentials]
    emit(
        {"credentials": rows},
        json_output=json_output,
        human=lambda d: table([_credential_row(c) for c in d["credentials"]], _HEADERS),
    )


def _state_change(
    method: str,
    credential_id: str,
    reason: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    from clearance.v1 import registry_pb2 as pb

    client = _client(credential, endpoint, insecure)
    request = getattr(pb, f"{method}Request")(id=credential_id, reason=reason)
    response = client.call(getattr(client.stub("CredentialService"), method), request)
    emit(
        _to_dict(response.credential),
        json_output=json_output,
        human=lambda c: table([_credential_row(c)], _HEADERS),
    )


@credential_group.command("suspend")
@click.argument("credential_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def credential_suspend(
    credential_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Suspend a credential (nodes deny it as soon as the update reaches them)."""
    _state_change("SuspendCredential", credential_id, reason, credential, endpoint, insecure, json_output)


@credential_group.command("reinstate")
@click.argument("credential_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def credential_reinstate(
    credential_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Reinstate a suspended credential (never a revoked one)."""
    _state_change("ReinstateCredential", credential_id, reason, credential, endpoint, insecure, json_output)


@credential_group.command("revoke")
@click.argument("credential_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def credential_revoke(
    credential_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Revoke a credential for good."""
    _state_change("RevokeCredential", credential_id, reason, credential, endpoint, insecure, json_output)
