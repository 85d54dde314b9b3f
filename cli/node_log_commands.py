"""``clearance node log`` (the decision log, read from its file) and the node's facility credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.node_options import dir_option, facility_identity, json_option, read_text, when
from cli.output import emit, printable, status_word, table


@click.group("log")
def log_group() -> None:
    """The node's hash-chained decision log."""


def _decision_log(directory: Path) -> Any:
    from clearance.errors import InvalidArgumentError
    from node import config as files
    from node.decision_log import DecisionLog

    path = Path(directory) / files.DECISIONS_NAME
    if not path.exists():
        raise InvalidArgumentError("--dir", f"{directory} has no decision log ({files.DECISIONS_NAME})")
    return DecisionLog(path)


@log_group.command("verify")
@dir_option
@json_option
def log_verify(directory: Path, json_output: bool) -> None:
    """Walk the decision log's hash chain; exit 3 at the first edited, deleted or reordered entry."""
    from clearance.errors import PolicyError

    decisions = _decision_log(directory)
    try:
        report = decisions.verify()
    finally:
        decisions.close()
    data = report.to_json()
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{status_word('intact', True)}: {d['entries_checked']} decisions chain to head {d['head_hash']}"
            if d["intact"]
            else f"{status_word('BROKEN', False)} at decision {d['broken_at']}: {d['problem']} "
            f"({d['entries_checked']} decisions check out before it)"
        ),
    )
    if not report.intact:
        raise PolicyError("decision_log_broken", f"at decision {report.broken_at}: {report.problem}")


@log_group.command("list")
@dir_option
@click.option("--after", default=0, show_default=True, help="Only decisions after this sequence number.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def log_list(directory: Path, after: int, limit: int, json_output: bool) -> None:
    """List decisions, oldest first."""
    decisions = _decision_log(directory)
    try:
        entries = [e.to_json() for e in decisions.entries(after=after, limit=limit)]
    finally:
        decisions.close()

    def human(items: list[dict[str, Any]]) -> str:
        if not items:
            return "no decisions"
        rows = []
        for e in items:
            record = e["record"] if isinstance(e["record"], dict) else {}
            label = record.get("label", {})
            rows.append(
                [
                    str(e["seq"]),
                    when(e["at"]),
                    status_word("allow", True) if e["allowed"] else status_word("deny", False),
                    printable(e["code"]),
                    printable(
                        f"{label.get('jurisdiction', '')} {label.get('level', '')} {label.get('category', '')}"
                    ),
                    printable(str(record.get("channel", ""))),
                ]
            )
        return table(rows, ["seq", "at", "decision", "code", "item", "channel"])

    emit(entries, json_output=json_output, human=human)


# -- facility credential ----------------------------------------------------------


@click.command("present-facility")
@dir_option
@click.option("--aud", "audience", required=True, help="The verifying node's identifier.")
@click.option("--nonce", required=True, help="The verifying node's challenge.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write it to a file.")
def present_facility(directory: Path, audience: str, nonce: str, out: Path | None) -> None:
    """This organization's facility presentation for another node (to be named as recipient there)."""
    from clearance.keys import atomic_write

    presentation = facility_identity(directory).present(audience=audience, nonce=nonce)
    if out is None:
        click.echo(presentation)
    else:
        atomic_write(out, (presentation + "\n").encode(), mode=0o600)
        click.echo(f"facility presentation for {audience} written to {out}", err=True)


@click.command("facility-import")
@click.argument("credential_file")
@dir_option
@json_option
def facility_import(credential_file: str, directory: Path, json_output: bool) -> None:
    """Replace the node's facility credential with a renewed one (restart the node to use it)."""
    from clearance.keys import read_private_key
    from node import config as files
    from node.agent import open_trust
    from node.config import NodeConfig
    from node.enrollment import import_facility

    config = NodeConfig.load(directory)
    store, state = open_trust(config, repair=False)
    store.close()
    name = import_facility(
        config,
        read_text(credential_file, "CREDENTIAL_FILE"),
        read_private_key(config.path(files.KEY_NAME)),
        state.current,
    )
    emit(
        {"organization_name": name, "path": str(config.path(files.FACILITY_NAME))},
        json_output=json_output,
        human=lambda d: (
            f"facility credential of {printable(d['organization_name'])} stored; restart the node"
        ),
    )
