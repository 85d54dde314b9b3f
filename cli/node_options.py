"""What the ``clearance node`` commands share: their options, reading inputs, the node's clients, printing a decision."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.output import emit, printable, status_word

if TYPE_CHECKING:
    from node.client import NodeClient
    from node.decisions import Label


def dir_option(function: Any) -> Any:
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="CLEARANCE_NODE_DIR",
        required=True,
        help="Node directory (or $CLEARANCE_NODE_DIR).",
    )(function)


def json_option(function: Any) -> Any:
    return click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")(
        function
    )


def when(seconds: int | None) -> str:
    if not seconds:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def read_text(source: str, option: str) -> str:
    """The content of file ``source`` (``-`` for stdin).

    Raises:
        InvalidArgumentError: it cannot be read.
    """
    from clearance.errors import InvalidArgumentError

    try:
        if source == "-":
            return sys.stdin.read().strip()
        return Path(source).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(option, f"cannot read {source}: {exc}") from exc


def parse_label(value: str) -> Label:
    """``--label`` as inline JSON or a JSON file.

    Raises:
        InvalidArgumentError: neither, or not a valid label.
    """
    from clearance.encoding import parse_json
    from clearance.errors import InvalidArgumentError, MalformedError
    from node.decisions import Label

    text = value if value.lstrip().startswith("{") else read_text(value, "--label")
    try:
        return Label.from_json(parse_json(text, what="label", max_bytes=16 * 1024))
    except MalformedError as exc:
        raise InvalidArgumentError("--label", exc.detail) from exc


def local_client(directory: Path) -> NodeClient:
    from node.client import NodeClient

    return NodeClient.for_directory(directory)


def facility_identity(directory: Path) -> Any:
    """This node's facility identity, read from its directory (beside a running node: read only)."""
    from clearance.keys import read_private_key
    from clearance.verify import MemoryNonceStore
    from node import config as files
    from node.agent import facility_credential, node_clock, open_trust
    from node.config import NodeConfig
    from node.facility import FacilityIdentity

    config = NodeConfig.load(directory)
    store, state = open_trust(config, repair=False)
    store.close()
    return FacilityIdentity(
        key=read_private_key(config.path(files.KEY_NAME)),
        credential=facility_credential(config),
        audience=config.audience,
        trust=lambda: state.current,
        nonces=MemoryNonceStore(),
        policy=config.policy,
        clock=node_clock(config),
    )


def emit_decision(response: Any, label: Label, json_output: bool) -> None:
    from clearance.errors import PolicyError

    data = {
        "allowed": response.allowed,
        "code": response.code,
        "reasons": list(response.reasons),
        "log_sequence": response.log_sequence,
        "label": label.to_json(),
        "presenter_jurisdiction": response.presenter_jurisdiction,
        **({"agreement_id": response.agreement_id} if response.agreement_id else {}),
        **({"mapped_level": response.mapped_level} if response.mapped_level else {}),
    }

    def human(d: dict[str, Any]) -> str:
        verdict = status_word("ALLOW", True) if d["allowed"] else status_word("DENY", False)
        lines = [f"{verdict} (decision {d['log_sequence']} in the log)"]
        lines += [f"  - {printable(reason)}" for reason in d["reasons"]]
        return "\n".join(lines)

    emit(data, json_output=json_output, human=human)
    if not response.allowed:
        code = response.code or "denied"  # the decision's own code, from the wire
        first = response.reasons[0] if response.reasons else "denied"
        raise PolicyError(code, first.removeprefix(f"{code}: "))  # words for people, shown as given
