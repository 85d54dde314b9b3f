"""``clearance node``: enroll a node, run it, and ask it for decisions.

A node lives in a directory (``--dir``, or ``$CLEARANCE_NODE_DIR``); see
:mod:`node.config` for what it holds. ``init`` and ``run`` act on the
directory; ``status``, ``challenge``, ``verify`` and ``authorize`` are clients
of the running node's local API (they find its address and token in the
directory); ``log`` reads the decision log file directly; ``peer`` talks to
another organization's node.

Exit codes (see :mod:`cli.exits`): 0 success or "allow"; 3 a presentation
refused or a decision "deny", or a decision log that does not verify;
4 unauthenticated; 5 the node or registry unreachable.

To be allowed, a presenter must disclose ``employer`` (``clearance wallet
present --disclose employer``): it binds the person to the recipient
organization's facility credential (see :mod:`node.decisions`).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click

from cli.node_api_commands import authorize, challenge, status, verify, verify_visit
from cli.node_log_commands import facility_import, log_group, present_facility
from cli.node_options import dir_option, json_option
from cli.node_peer_commands import peer
from cli.output import emit, printable


@click.group("node")
def node() -> None:
    """Run a node: enroll, sync, verify presentations, decide on sharing, keep a decision log."""


# -- init / run ------------------------------------------------------------------


@node.command("init")
@dir_option
@click.option("--registry", required=True, metavar="HOST:PORT", help="The registry's address.")
@click.option(
    "--root-fingerprint",
    required=True,
    metavar="FP",
    help="The registry root's thumbprint, given to you out of band with the token.",
)
@click.option(
    "--token", required=True, envvar="CLEARANCE_ENROLLMENT_TOKEN", help="One-time enrollment token."
)
@click.option(
    "--registry-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM of the CA of the registry's TLS certificate (default: the system's).",
)
@click.option("--insecure", is_flag=True, help="Plaintext to the registry (only to a loopback registry).")
@click.option("--name", default=lambda: socket.gethostname(), show_default="the host name", help="Node name.")
@click.option(
    "--listen",
    default="127.0.0.1:7600",
    show_default=True,
    metavar="ADDR",
    help="Local API: 127.0.0.1:PORT (0: any free port) or unix:PATH.",
)
@click.option("--peer-listen", default="", metavar="HOST:PORT", help="Serve the node-to-node API here.")
@click.option("--peer-insecure", is_flag=True, help="Plaintext peer API (loopback only).")
@click.option(
    "--staleness",
    "staleness",
    multiple=True,
    metavar="LEVEL=SECONDS",
    help="Oldest status list a decision at LEVEL may rest on (repeatable; default TOP_SECRET=3600, SECRET=86400, CONFIDENTIAL=604800).",
)
@click.option(
    "--poll-interval",
    type=click.IntRange(1, 86400),
    default=30,
    show_default=True,
    help="Seconds between polls while the push stream is down.",
)
@click.option(
    "--max-backoff",
    type=click.IntRange(1, 86400),
    default=60,
    show_default=True,
    help="Longest wait between reconnection attempts (seconds).",
)
@click.option(
    "--unsafe-clock-file",
    default="",
    metavar="FILE",
    help="TESTS ONLY: read the time from FILE (epoch seconds); refused unless the node runs with CLEARANCE_ALLOW_UNSAFE_CLOCK=1.",
)
@json_option
def init(
    directory: Path,
    registry: str,
    root_fingerprint: str,
    token: str,
    registry_ca: Path | None,
    insecure: bool,
    name: str,
    listen: str,
    peer_listen: str,
    peer_insecure: bool,
    staleness: tuple[str, ...],
    poll_interval: int,
    max_backoff: int,
    unsafe_clock_file: str,
    json_output: bool,
) -> None:
    """Enroll this node with a registry, pinning its root by fingerprint."""
    from node.enrollment import enroll

    settings: dict[str, object] = {
        "poll_interval": poll_interval,
        "max_backoff": max_backoff,
        "unsafe_clock_file": str(Path(unsafe_clock_file).resolve()) if unsafe_clock_file else "",
    }
    if staleness:
        settings["staleness"] = _pairs(staleness, "--staleness", int)
    result = enroll(
        directory,
        registry=registry,
        root_fingerprint=root_fingerprint,
        token=token,
        name=name,
        registry_ca=registry_ca.read_bytes() if registry_ca else None,
        registry_insecure=insecure,
        listen=listen,
        peer_listen=peer_listen,
        peer_insecure=peer_insecure,
        settings=settings,
    )
    config = result.config
    data: dict[str, Any] = {
        "directory": str(directory),
        "node_id": config.node_id,
        "organization_id": config.organization_id,
        "organization_name": config.organization_name,
        "jurisdiction": config.jurisdiction,
        "registry": config.registry,
        "root_fingerprint": result.root_fingerprint,
        "bundle_version": result.bundle_version,
        "facility_credential": result.facility,
        "listen": config.listen,
        "peer_listen": config.peer_listen,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"node {d['node_id']} enrolled with registry {d['jurisdiction']} ({d['registry']})\n"
            f"  root pinned        {d['root_fingerprint']}\n"
            f"  organization       {printable(d['organization_name'] or d['organization_id'])}"
            f" ({'facility credential held' if d['facility_credential'] else 'no facility credential yet'})\n"
            f"  trust bundle       v{d['bundle_version']}\n"
            f"Next: clearance node run --dir {d['directory']}"
        ),
    )


def _pairs(values: tuple[str, ...], option: str, kind: type[Any]) -> dict[str, Any]:
    from clearance.errors import InvalidArgumentError

    out: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(option, f"{value!r} is not KEY=VALUE")
        try:
            out[key.strip()] = kind(raw.strip())
        except ValueError:
            raise InvalidArgumentError(option, f"{value!r}: {raw!r} is not a {kind.__name__}") from None
    return out


@node.command("run")
@dir_option
def run(directory: Path) -> None:
    """Run the node: sync with the registry and serve the local API until SIGTERM or Ctrl-C."""
    import logging
    import sys

    from node.agent import NodeAgent

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    agent = NodeAgent.open(directory)
    click.echo(f"node {agent.config.node_id} starting (local API {agent.config.listen})", err=True)
    agent.run_forever()


for _command in (
    status,
    challenge,
    verify,
    verify_visit,
    authorize,
    log_group,
    present_facility,
    facility_import,
    peer,
):
    node.add_command(_command)
