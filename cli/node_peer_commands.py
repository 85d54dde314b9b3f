"""``clearance node peer``: talk to another organization's node, authenticated by both facility credentials."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.node_options import dir_option, emit_decision, facility_identity, json_option, parse_label, read_text
from cli.output import emit, printable

if TYPE_CHECKING:
    import grpc


@click.group("peer")
def peer() -> None:
    """Talk to another organization's node, authenticated by both facility credentials."""


def _peer_options(function: Any) -> Any:
    function = click.option("--insecure", is_flag=True, help="Plaintext (a loopback peer only).")(function)
    function = click.option(
        "--peer-ca",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="PEM of the CA of the peer's TLS certificate.",
    )(function)
    return click.option(
        "--peer", "endpoint", required=True, metavar="HOST:PORT", help="The peer node's peer API."
    )(function)


def _peer_channel(endpoint: str, peer_ca: Path | None, insecure: bool) -> grpc.Channel:
    from clearance.channel import open_channel
    from clearance.errors import InvalidArgumentError
    from node.config import check_endpoint, is_loopback_host

    check_endpoint(endpoint, "--peer")
    if insecure and not is_loopback_host(endpoint.rpartition(":")[0]):
        raise InvalidArgumentError("--insecure", "plaintext is allowed to a loopback peer only")
    return open_channel(endpoint, ca_pem=peer_ca.read_bytes() if peer_ca else None, insecure=insecure)


@peer.command("challenge")
@_peer_options
@json_option
def peer_challenge(endpoint: str, peer_ca: Path | None, insecure: bool, json_output: bool) -> None:
    """A nonce of the peer node, for a person's presentation to it."""
    from clearance.client.peer import PeerNodeClient

    client = PeerNodeClient(_peer_channel(endpoint, peer_ca, insecure), endpoint=endpoint)
    try:
        response = client.challenge()
    finally:
        client.close()
    emit(
        {"nonce": response.nonce, "audience": response.audience},
        json_output=json_output,
        human=lambda d: f"nonce     {d['nonce']}\naudience  {d['audience']}",
    )


@peer.command("present")
@click.argument("presentation_file")
@click.option("--label", "label_value", required=True, metavar="JSON_OR_FILE", help="The item's label.")
@_peer_options
@dir_option
@json_option
def peer_present(
    presentation_file: str,
    label_value: str,
    endpoint: str,
    peer_ca: Path | None,
    insecure: bool,
    directory: Path,
    json_output: bool,
) -> None:
    """Open a mutually authenticated session with the peer and present one of our people (exit 3 on deny).

    The presentation must be bound to a nonce from `clearance node peer challenge`.
    """
    from node.peers import PeerClient

    label = parse_label(label_value)
    presentation = read_text(presentation_file, "PRESENTATION_FILE")
    channel = _peer_channel(endpoint, peer_ca, insecure)
    try:
        client = PeerClient(channel, facility_identity(directory), endpoint=endpoint)
        session = client.open_session()
        if not json_output:
            organization = session.organization
            click.echo(
                f"authenticated peer {printable(str(organization.get('name', '')))} "
                f"({organization.get('id', '')}, facility {session.peer.level})",
                err=True,
            )
        response = client.present(session.session_id, label, presentation)
    finally:
        channel.close()
    emit_decision(response, label, json_output)
