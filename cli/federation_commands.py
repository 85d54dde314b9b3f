"""Mutual recognition between registries, and visit assurances.

Negotiating an agreement uses the roots, so ``propose`` and ``sign`` run
where each registry's root key lives (``--dir``); ``import``, ``list`` and
``terminate`` are staff calls to the registry::

    # JP: propose to the US (the US root fingerprint was given out of band)
    clearance agreement propose --dir jp --partner-endpoint us.example:7443 \\
        --partner-fingerprint US_FP --map CONFIDENTIAL=CONFIDENTIAL --map SECRET=SECRET \\
        --category joint-research --out proposal.json
    # US: review the terms and countersign
    clearance agreement sign proposal.json --dir us --out agreement.json
    # both: bring it into force, saying where the partner publishes
    clearance agreement import agreement.json --partner-endpoint us.example:7443 --partner-ca us-ca.pem
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import click

from cli import records
from cli.connection import credential_option, json_option, registry_client
from cli.output import emit, status_word, table


def _load_root(directory: Path) -> Any:
    from clearance.errors import InvalidArgumentError
    from clearance.keys import read_private_key

    path = directory / "keys" / "root.pem"
    if not path.exists():
        raise InvalidArgumentError(
            "--dir", f"{directory} holds no root key (keys/root.pem); run this where the root is kept"
        )
    return read_private_key(path)


def _partner_bundle(endpoint: str | None, bundle_file: Path | None, ca: Path | None, insecure: bool) -> str:
    from clearance.errors import InvalidArgumentError

    if bundle_file is not None:
        return bundle_file.read_text().strip()
    if endpoint is None:
        raise InvalidArgumentError(
            "--partner-endpoint", "give the partner's endpoint or --partner-bundle FILE"
        )
    from clearance.client import RegistryClient

    with RegistryClient.connect(
        endpoint, ca_pem=ca.read_bytes() if ca else None, insecure=insecure, peer=f"partner {endpoint}"
    ) as partner:
        return partner.publication.trust_bundle(timeout=15)


def _terms(agreement: Any) -> dict[str, Any]:
    a, b = agreement.parties
    return {
        "id": agreement.id,
        "parties": [
            {"jurisdiction": p.jurisdiction, "issuer": p.issuer, "root_fingerprint": p.root.thumbprint}
            for p in agreement.parties
        ],
        "levels": [{a.jurisdiction: x, b.jurisdiction: y} for x, y in agreement.levels],
        "categories": {j: list(c) for j, c in agreement.categories.items()},
        "valid_from": agreement.not_before,
        "valid_until": agreement.expires_at,
        "signed_by": [p.jurisdiction for p in agreement.parties if agreement.is_signed_by(p.jurisdiction)],
    }


def _day_of(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d")


def _show_terms(t: dict[str, Any]) -> str:
    a, b = (p["jurisdiction"] for p in t["parties"])
    rows = [[row[a], "<->", row[b]] for row in t["levels"]]
    lines = [
        f"agreement {t['id']} between {a} and {b}, {_day_of(t['valid_from'])} to {_day_of(t['valid_until'])}",
        *(f"  {p['jurisdiction']}: root {p['root_fingerprint']}  ({p['issuer']})" for p in t["parties"]),
        "  equivalent levels (a level not listed is not recognized):",
        *("    " + line for line in table(rows, [a, "", b]).splitlines()),
        *(
            f"  {j} opens to the other party: {', '.join(c) or '(nothing)'}"
            for j, c in t["categories"].items()
        ),
        f"  signed by: {', '.join(t['signed_by']) or 'nobody'}",
    ]
    return "\n".join(lines)


@click.group("agreement")
def agreement() -> None:
    """Mutual recognition between registries: propose, sign, import, list, terminate."""


@agreement.command("propose")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="This registry's directory (with its root key).",
)
@click.option(
    "--partner-endpoint", metavar="HOST:PORT", help="Fetch the partner's trust bundle from its registry."
)
@click.option(
    "--partner-bundle",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Or read it from a file.",
)
@click.option(
    "--partner-fingerprint", required=True, help="The partner's root fingerprint, obtained out of band."
)
@click.option(
    "--partner-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA of the partner's TLS certificate.",
)
@click.option(
    "--partner-insecure", is_flag=True, help="Plaintext to the partner (loopback development only)."
)
@click.option(
    "--map",
    "mappings",
    multiple=True,
    required=True,
    metavar="OURS=THEIRS",
    help="Equivalent levels (repeatable).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    required=True,
    help="A category both sides open to each other (repeatable).",
)
@click.option("--id", "agreement_id", help="Agreement id (default: OURS-THEIRS-YYYYMMDD).")
@click.option(
    "--days", default=365, show_default=True, type=click.IntRange(1, 3650), help="How long it stays in force."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the proposal.",
)
@json_option
def propose(
    directory: Path,
    partner_endpoint: str | None,
    partner_bundle: Path | None,
    partner_fingerprint: str,
    partner_ca: Path | None,
    partner_insecure: bool,
    mappings: tuple[str, ...],
    categories: tuple[str, ...],
    agreement_id: str | None,
    days: int,
    out: Path,
    json_output: bool,
) -> None:
    """Propose an agreement to a partner registry, signed by this registry's root."""
    from clearance.agreement import Party, propose_to_partner
    from clearance.errors import InvalidArgumentError
    from clearance.keys import atomic_write
    from registry.config import RegistryConfig

    config = RegistryConfig.load(directory)
    root = _load_root(directory)
    token = _partner_bundle(partner_endpoint, partner_bundle, partner_ca, partner_insecure)
    levels = []
    for mapping in mappings:
        ours, sep, theirs = mapping.partition("=")
        if not sep:
            raise click.BadParameter("use OURS=THEIRS, e.g. SECRET=SECRET", param_hint="--map")
        levels.append((ours, theirs))
    try:
        proposal = propose_to_partner(
            root,
            ours=Party(config.jurisdiction, root.public, config.issuer),
            our_levels=list(config.levels),
            partner_bundle=token,
            partner_fingerprint=partner_fingerprint,
            levels=levels,
            categories=categories,
            now=int(time.time()),
            days=days,
            agreement_id=agreement_id,
        )
    except InvalidArgumentError as exc:
        if exc.field == "levels":
            raise InvalidArgumentError("--map", exc.detail) from exc
        raise
    partner = proposal.counterpart(config.jurisdiction)
    atomic_write(out, json.dumps(proposal.to_json(), indent=2).encode())
    terms = _terms(proposal)
    emit(
        {**terms, "written_to": str(out)},
        json_output=json_output,
        human=lambda t: (
            f"{_show_terms(t)}\nproposal written to {t['written_to']}: send it to {partner.jurisdiction}"
        ),
    )


@agreement.command("sign")
@click.argument("proposal", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="This registry's directory (with its root key).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@json_option
def sign(proposal: Path, directory: Path, out: Path, json_output: bool) -> None:
    """Countersign a partner's proposal with this registry's root."""
    from clearance.agreement import Agreement
    from clearance.errors import InvalidArgumentError, MalformedError, VerificationError
    from clearance.keys import atomic_write
    from registry.config import RegistryConfig

    config = RegistryConfig.load(directory)
    root = _load_root(directory)
    try:
        parsed = Agreement.parse(json.loads(proposal.read_text()))
    except ValueError as exc:
        raise InvalidArgumentError("PROPOSAL", f"{proposal} is not JSON") from exc
    party = parsed.party(config.jurisdiction)
    if party.root.thumbprint != root.kid:
        raise InvalidArgumentError("PROPOSAL", "the proposal names another root for this registry")
    other = parsed.counterpart(config.jurisdiction)
    try:
        parsed.document.signed_by(other.root, what="proposal")
    except VerificationError as exc:
        raise InvalidArgumentError(
            "PROPOSAL", f"the proposal is not signed by {other.jurisdiction}'s root: {exc.detail}"
        ) from exc
    try:
        signed = parsed.countersign(root)
        signed.verify_signatures()
    except MalformedError as exc:
        raise InvalidArgumentError("PROPOSAL", exc.detail) from exc
    atomic_write(out, json.dumps(signed.to_json(), indent=2).encode())
    terms = _terms(signed)
    emit(
        {**terms, "written_to": str(out)},
        json_output=json_output,
        human=lambda t: (
            f"{_show_terms(t)}\nsigned agreement written to {t['written_to']}: both registries now import it"
        ),
    )


def _show_records(rows: list[dict[str, Any]]) -> str:
    return (
        table(
            [
                [
                    r["id"],
                    r.get("partner_jurisdiction"),
                    status_word(r["state"], r["state"] == "in_force"),
                    r.get("partner_endpoint"),
                    r.get("last_partner_sync", "-"),
                    r.get("partner_problem", ""),
                ]
                for r in rows
            ],
            ["id", "partner", "state", "endpoint", "last sync", "problem"],
        )
        or "no agreements"
    )


@agreement.command("import")
@click.argument("document", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--partner-endpoint", required=True, metavar="HOST:PORT", help="Where the partner publishes.")
@click.option(
    "--partner-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA of the partner's TLS certificate (omit for plaintext loopback).",
)
@credential_option
@json_option
def import_(
    document: Path,
    partner_endpoint: str,
    partner_ca: Path | None,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Bring an agreement signed by both roots into force at this registry."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        imported = client.federation.import_agreement(
            document.read_text(),
            partner_endpoint=partner_endpoint,
            partner_ca_pem=partner_ca.read_text() if partner_ca else "",
        )
    emit(records.agreement(imported), json_output=json_output, human=lambda r: _show_records([r]))


@agreement.command("list")
@credential_option
@json_option
def list_(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """List agreements and how partner sync is going."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        rows = [records.agreement(a) for a in client.federation.list_agreements()]
    emit({"agreements": rows}, json_output=json_output, human=lambda d: _show_records(d["agreements"]))


@agreement.command("terminate")
@click.argument("agreement_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def terminate(
    agreement_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """End an agreement: nodes stop trusting the partner as soon as the new bundle reaches them."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        ended = client.federation.terminate_agreement(agreement_id, reason=reason)
    emit(records.agreement(ended), json_output=json_output, human=lambda r: _show_records([r]))


# -- visits ------------------------------------------------------------------------------

_KINDS = ("one_time", "recurring", "emergency")


@click.group("visit")
def visit() -> None:
    """Visit assurances: a signed, time-boxed 'request for visit' for a cleared person abroad."""


def _day(value: str | None, option: str, default: int) -> int:
    if not value:
        return default
    try:
        parsed = datetime.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("must be a date YYYY-MM-DD", param_hint=option) from None
    return int(datetime.datetime(parsed.year, parsed.month, parsed.day, tzinfo=datetime.UTC).timestamp())


@visit.command("issue")
@click.argument("credential_id")
@click.option("--host-jurisdiction", required=True, metavar="CODE")
@click.option(
    "--host-org", "host_organization", required=True, help="The host organization's id at its registry."
)
@click.option("--programme", required=True)
@click.option("--kind", type=click.Choice(_KINDS), default="one_time", show_default=True)
@click.option("--from", "start", metavar="YYYY-MM-DD", help="Default: now.")
@click.option("--until", "end", metavar="YYYY-MM-DD", help="Default: 30 days from now.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path))
@credential_option
@json_option
def visit_issue(
    credential_id: str,
    host_jurisdiction: str,
    host_organization: str,
    programme: str,
    kind: str,
    start: str | None,
    end: str | None,
    out: Path | None,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Issue a visit assurance for a cleared person's credential."""
    from clearance.client.federation import VisitKind
    from clearance.keys import atomic_write

    now = int(time.time())
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        assurance = client.federation.issue_visit_assurance(
            credential_id,
            host_jurisdiction=host_jurisdiction.upper(),
            host_organization=host_organization,
            programme=programme,
            kind=VisitKind(kind),
            not_before=_day(start, "--from", now),
            not_after=_day(end, "--until", now + 30 * 86400),
        )
    if out is not None:
        atomic_write(out, (assurance + "\n").encode())
    data: dict[str, Any] = {"assurance": assurance, "written_to": str(out) if out else None}
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"visit assurance written to {d['written_to']}" if d["written_to"] else d["assurance"]
        ),
    )
