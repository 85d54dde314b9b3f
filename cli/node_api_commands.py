"""``clearance node status|challenge|verify|verify-visit|authorize``: clients of the running node's local API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.node_options import (
    dir_option,
    duration,
    emit_decision,
    json_option,
    local_client,
    parse_label,
    read_text,
    when,
)
from cli.output import emit, printable, status_word, table

if TYPE_CHECKING:
    from node.client import NodeClient

if TYPE_CHECKING:
    pass


def _status_data(client: NodeClient, directory: Path) -> dict[str, Any]:
    from node.config import NodeConfig

    response = client.sync_status()
    config = NodeConfig.load(directory)
    policy = dict(response.staleness_policy)

    def registry(r: Any) -> dict[str, Any]:
        return {
            "jurisdiction": r.jurisdiction,
            "issuer": r.issuer,
            "root_fingerprint": r.root_fingerprint,
            "bundle_version": r.bundle_version,
            "bundle_expires_at": r.bundle_expires_at.seconds,
            **({"agreement_id": r.agreement_id} if r.agreement_id else {}),
        }

    return {
        "node_id": config.node_id,
        "registry": config.registry,
        "pinned_root": config.root_fingerprint,
        "home": registry(response.home) if response.HasField("home") else None,
        "foreign": [registry(f) for f in response.foreign],
        "status_lists": [
            {
                "uri": s.uri,
                "issued_at": s.issued_at.seconds,
                "age_seconds": s.age_seconds,
                "sequence": s.sequence,
                "fresh_for": sorted(level for level, limit in policy.items() if s.age_seconds <= limit),
                "stale_for": sorted(level for level, limit in policy.items() if s.age_seconds > limit),
            }
            for s in response.status_lists
        ],
        "last_sync": response.last_sync.seconds if response.HasField("last_sync") else None,
        "connected": response.connected,
        "staleness_policy": policy,
        "problems": list(response.problems),
    }


def _render_status(d: dict[str, Any]) -> str:
    lines = [
        f"node {d['node_id']}, registry {d['registry']}: "
        + status_word("connected" if d["connected"] else "not connected", d["connected"])
    ]
    home = d["home"]
    if home:
        lines.append(
            f"  trusts      {home['jurisdiction']} {printable(home['issuer'])} (root {home['root_fingerprint']})"
        )
        lines.append(f"  bundle      v{home['bundle_version']}, expires {when(home['bundle_expires_at'])}")
    else:
        lines.append("  trusts      nothing yet (no trust bundle)")
    for partner in d["foreign"]:
        lines.append(
            f"  partner     {partner['jurisdiction']} bundle v{partner['bundle_version']} through agreement "
            f"{printable(partner.get('agreement_id', ''))}, expires {when(partner['bundle_expires_at'])}"
        )
    lines.append(f"  last sync   {when(d['last_sync'])}")
    policy = ", ".join(f"{level} {duration(age)}" for level, age in sorted(d["staleness_policy"].items()))
    lines.append(f"  staleness   {policy}")
    if d["status_lists"]:
        rows = [
            [
                printable(s["uri"]),
                duration(s["age_seconds"]),
                str(s["sequence"]),
                status_word(", ".join(s["stale_for"]), False)
                if s["stale_for"]
                else status_word("all levels", True),
            ]
            for s in d["status_lists"]
        ]
        lines.append(table(rows, ["status list", "age", "seq", "stale for"]))
    if d["problems"]:
        lines.append(status_word("problems", False))
        lines.extend(f"  - {printable(p)}" for p in d["problems"])
    else:
        lines.append(status_word("no problems", True))
    return "\n".join(lines)


@click.command("status")
@dir_option
@json_option
def status(directory: Path, json_output: bool) -> None:
    """What the running node trusts, how fresh its status lists are, and what is wrong."""
    client = local_client(directory)
    try:
        data = _status_data(client, directory)
    finally:
        client.close()
    emit(data, json_output=json_output, human=_render_status)


@click.command("challenge")
@dir_option
@json_option
def challenge(directory: Path, json_output: bool) -> None:
    """A single-use nonce (and the audience) for a holder to bind a presentation to."""
    client = local_client(directory)
    try:
        response = client.challenge()
    finally:
        client.close()
    data: dict[str, Any] = {
        "nonce": response.nonce,
        "audience": response.audience,
        "expires_at": response.expires_at.seconds,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"nonce     {d['nonce']}\naudience  {d['audience']}\nexpires   {when(d['expires_at'])}\n"
            f"present with: clearance wallet present --nonce {d['nonce']} --aud {d['audience']} --disclose employer"
        ),
    )


@click.command("verify")
@click.argument("presentation_file")
@dir_option
@json_option
def verify(presentation_file: str, directory: Path, json_output: bool) -> None:
    """Verify a presentation (FILE, or - for stdin) offline at the running node."""
    from clearance.errors import MalformedError, Reason, VerificationError

    presentation = read_text(presentation_file, "PRESENTATION_FILE")
    client = local_client(directory)
    try:
        (result,) = client.verify([presentation])
    finally:
        client.close()
    data: dict[str, Any] = {"valid": result.valid}
    if result.valid:
        data.update(
            {
                "clearance": {
                    "jurisdiction": result.clearance.jurisdiction,
                    "level": result.clearance.level,
                    "categories": list(result.clearance.categories),
                },
                "subject": result.subject,
                "issuer": result.issuer,
                "disclosed": json.loads(result.disclosed_json or "{}"),
                "checks": list(result.checks),
            }
        )
    else:
        data.update({"reason": result.reason, "detail": result.detail})

    def human(d: dict[str, Any]) -> str:
        if not d["valid"]:
            return f"{status_word('refused', False)}: {d['reason']}: {printable(d['detail'])}"
        c = d["clearance"]
        lines = [
            f"{status_word('valid', True)}: {c['jurisdiction']} {c['level']} ({', '.join(c['categories'])})"
        ]
        lines += [f"  - {printable(check)}" for check in d["checks"]]
        if d["disclosed"]:
            lines.append(
                "  disclosed: " + ", ".join(f"{k}={printable(str(v))}" for k, v in d["disclosed"].items())
            )
        return "\n".join(lines)

    emit(data, json_output=json_output, human=human)
    if not result.valid:
        try:
            reason = Reason(result.reason)
        except ValueError:
            raise MalformedError(result.detail) from None
        raise VerificationError(reason, result.detail)


@click.command("verify-visit")
@click.argument("presentation_file")
@click.option(
    "--assurance",
    "assurance_file",
    required=True,
    metavar="FILE",
    help="The visit assurance (clearance-visit+jwt).",
)
@dir_option
@json_option
def verify_visit(presentation_file: str, assurance_file: str, directory: Path, json_output: bool) -> None:
    """Check a visitor's visit assurance for this organization with their presentation (exit 3: refused)."""
    from clearance.errors import PolicyError

    client = local_client(directory)
    try:
        result = client.verify_visit(
            read_text(assurance_file, "--assurance"), read_text(presentation_file, "PRESENTATION_FILE")
        )
    finally:
        client.close()
    data: dict[str, Any] = {
        "allowed": result.allowed,
        "reasons": list(result.reasons),
        "log_sequence": result.log_sequence,
        "visitor_jurisdiction": result.visitor_jurisdiction,
    }
    if result.allowed:
        data.update(
            {
                "programme": result.programme,
                "visit_kind": result.visit_kind,
                "not_before": result.not_before.seconds,
                "not_after": result.not_after.seconds,
                "clearance": {
                    "jurisdiction": result.clearance.jurisdiction,
                    "level": result.clearance.level,
                    "categories": list(result.clearance.categories),
                },
            }
        )

    def human(d: dict[str, Any]) -> str:
        word = status_word("visit allowed", True) if d["allowed"] else status_word("visit refused", False)
        lines = [f"{word} (decision log #{d['log_sequence']})"]
        lines += [f"  - {printable(r)}" for r in d["reasons"]]
        return "\n".join(lines)

    emit(data, json_output=json_output, human=human)
    if not result.allowed:
        raise PolicyError("visit_refused", result.reasons[0] if result.reasons else "refused")


@click.command("authorize")
@click.argument("presentation_file")
@click.option("--label", "label_value", required=True, metavar="JSON_OR_FILE", help="The item's label.")
@click.option(
    "--facility",
    "facility_file",
    metavar="FILE",
    help="The recipient organization's facility presentation (default: this node's own organization).",
)
@dir_option
@json_option
def authorize(
    presentation_file: str, label_value: str, facility_file: str | None, directory: Path, json_output: bool
) -> None:
    """Decide whether a labelled item may be shared with the presenter (exit 3 on deny); logged.

    The label is {"jurisdiction", "level", "category", "releasable_to": [...]}.
    """
    label = parse_label(label_value)
    presentation = read_text(presentation_file, "PRESENTATION_FILE")
    facility = read_text(facility_file, "--facility") if facility_file else ""
    client = local_client(directory)
    try:
        response = client.authorize(label, presentation, facility)
    finally:
        client.close()
    emit_decision(response, label, json_output)
