"""``clearance witness``: run a transparency-log witness (C2SP tlog-witness) for the oversight body or a partner.

``init`` creates the witness's key and prints its verifier key (give it to
the registries whose bundles name this witness); ``add-log`` names a log it
will cosign (origin and the log's verifier key); ``serve`` answers
``POST /add-checkpoint`` over HTTPS; ``status`` shows each log's latest
cosigned size.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import click

from cli.connection import json_option
from cli.output import emit, printable, table

_DIR = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Witness directory.",
)


@click.group("witness")
def witness() -> None:
    """Cosign registries' transparency-log checkpoints, only ever consistent ones."""


@witness.command("init")
@_DIR
@click.option("--name", required=True, help="The witness's key name, e.g. oversight.jp.example/witness.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help="DNS name or IP for the TLS certificate (repeatable; default: localhost and 127.0.0.1).",
)
@json_option
def init(directory: Path, name: str, hosts: tuple[str, ...], json_output: bool) -> None:
    """Create a witness: a cosigning key, an empty state database and TLS material."""
    from clearance.errors import InvalidArgumentError, MalformedError
    from oversight.witness_home import WitnessHome

    try:
        home = WitnessHome.init(directory, name, list(hosts) or ["localhost", "127.0.0.1"])
    except MalformedError as exc:
        raise InvalidArgumentError("--name", exc.detail) from exc
    data = {"directory": str(directory), "name": name, "verifier_key": home.signer().verifier.vkey}
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"Witness {d['name']} created in {d['directory']}\n"
            f"  verifier key   {d['verifier_key']}\n"
            "Give the verifier key to the registries whose bundles will name this witness.\n"
            f"Next: clearance witness add-log --dir {d['directory']} --origin ORIGIN --key LOG_VERIFIER_KEY"
        ),
    )


@witness.command("add-log")
@_DIR
@click.option("--origin", required=True, help="The log's checkpoint origin line.")
@click.option("--key", "vkey", required=True, metavar="VKEY", help="The log's Ed25519 note verifier key.")
@json_option
def add_log(directory: Path, origin: str, vkey: str, json_output: bool) -> None:
    """Follow a log: cosign its checkpoints signed by VKEY, starting from size 0."""
    from clearance.errors import InvalidArgumentError, MalformedError
    from clearance.transparency.checkpoint import Checkpoint
    from clearance.transparency.merkle import EMPTY_ROOT
    from clearance.transparency.note import Ed25519NoteVerifier
    from oversight.witness_home import WitnessHome

    try:
        verifier = Ed25519NoteVerifier.from_vkey(vkey)
    except MalformedError as exc:
        raise InvalidArgumentError("--key", exc.detail) from exc
    try:
        Checkpoint(origin, 0, EMPTY_ROOT)
    except ValueError as exc:
        raise InvalidArgumentError("--origin", str(exc)) from exc
    state = WitnessHome.open(directory).store().add_log(origin, verifier.vkey)
    emit(
        {"origin": state.origin, "verifier_key": state.verifier_key, "size": state.size},
        json_output=json_output,
        human=lambda d: f"following {d['origin']} (signed by {d['verifier_key']})",
    )


@witness.command("serve")
@_DIR
@click.option("--listen", default="127.0.0.1:7380", show_default=True, metavar="HOST:PORT")
@click.option("--insecure", is_flag=True, help="Serve plaintext (refused unless HOST is loopback).")
def serve(directory: Path, listen: str, insecure: bool) -> None:
    """Answer POST /add-checkpoint until SIGTERM or Ctrl-C."""
    import logging
    import signal
    import sys
    import threading

    from clearance.listen_address import check_listen_address
    from clearance.web import TlsPem, start
    from oversight.witness import Witness
    from oversight.witness_home import WitnessHome
    from oversight.witness_http import WITNESS_LIMITS, witness_app

    check_listen_address(listen, insecure=insecure)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    home = WitnessHome.open(directory)
    tls = None if insecure else TlsPem(home.tls.cert, home.tls.key)
    app = witness_app(Witness(home.store(), home.signer(), lambda: datetime.datetime.now(datetime.UTC)))
    running = start(app, listen, tls=tls, insecure=insecure, limits=WITNESS_LIMITS, name="witness")
    done = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(
        f"witness {home.name} serving on {listen.rpartition(':')[0]}:{running.port} "
        f"({'plaintext' if insecure else 'TLS'})",
        err=True,
    )
    while not done.wait(1.0):
        pass
    running.stop()


@witness.command("status")
@_DIR
@json_option
def status(directory: Path, json_output: bool) -> None:
    """The logs this witness follows and the latest size it cosigned for each."""
    from oversight.witness_home import WitnessHome

    home = WitnessHome.open(directory)
    logs = [
        {
            "origin": state.origin,
            "verifier_key": state.verifier_key,
            "size": state.size,
            "cosigned_at": (
                datetime.datetime.fromtimestamp(state.updated_at, datetime.UTC).isoformat()
                if state.updated_at is not None
                else None
            ),
        }
        for state in home.store().logs()
    ]
    data = {"name": home.name, "verifier_key": home.signer().verifier.vkey, "logs": logs}
    emit(data, json_output=json_output, human=_render_status)


def _render_status(data: dict[str, Any]) -> str:
    rows = [
        (printable(log["origin"]), f"{log['size']:,}", log["cosigned_at"] or "never") for log in data["logs"]
    ]
    body = table(rows, ["log", "cosigned size", "last cosigned"]) if rows else "(no logs yet)"
    return f"witness {data['name']}\nverifier key {data['verifier_key']}\n{body}"
