"""``clearance audit`` (also ``clearance registry audit``): read and verify the registry's audit log."""

from __future__ import annotations

from pathlib import Path

import click

from cli import records
from cli.connection import credential_option, json_option, registry_client
from cli.output import emit, status_word, table


@click.group("audit")
def audit() -> None:
    """Read and verify the registry's hash-chained audit log (administrators, oversight)."""


@audit.command("verify")
@credential_option
@json_option
def audit_verify(credential: Path, endpoint: str | None, insecure: bool, json_output: bool) -> None:
    """Walk the whole chain; exit 3 if any event was edited, deleted or reordered."""
    from clearance.errors import Reason, VerificationError

    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        report = records.audit_chain(client.audit.verify_chain())
    report.setdefault("intact", False)
    emit(
        report,
        json_output=json_output,
        human=lambda r: (
            f"audit chain {records.state_word('intact') if r['intact'] else status_word('BROKEN', False)}: "
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
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        found = client.audit.events(after_sequence=after, action=action, object_id=object_id, limit=limit)
    events = [records.audit_event(e) for e in found]
    emit(
        {"events": events},
        json_output=json_output,
        human=lambda d: table(
            [
                [
                    e.get("sequence"),
                    records.when(e.get("at")),
                    e.get("actor"),
                    e.get("action"),
                    e.get("object_id"),
                ]
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
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        counts = client.audit.statistics()
    emit(counts, json_output=json_output, human=lambda c: table(sorted(c.items()), ["count", "value"]))
