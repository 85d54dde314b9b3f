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

import json
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.output import emit, printable, status_word, table

if TYPE_CHECKING:
    from clearance.v1 import node_pb2
    from node.client import NodeClient
    from node.decisions import Label


def _dir_option(function: Any) -> Any:
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="CLEARANCE_NODE_DIR",
        required=True,
        help="Node directory (or $CLEARANCE_NODE_DIR).",
    )(function)


def _json_option(function: Any) -> Any:
    return click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")(
        function
    )


def _when(seconds: int | None) -> str:
    if not seconds:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _read_text(source: str, option: str) -> str:
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


def _label(value: str) -> Label:
    """``--label`` as inline JSON or a JSON file.

    Raises:
        InvalidArgumentError: neither, or not a valid label.
    """
    from clearance.encoding import parse_json
    from clearance.errors import InvalidArgumentError, MalformedError
    from node.decisions import Label

    text = value if value.lstrip().startswith("{") else _read_text(value, "--label")
    try:
        return Label.from_json(parse_json(text, what="label", max_bytes=16 * 1024))
    except MalformedError as exc:
        raise InvalidArgumentError("--label", exc.detail) from exc


def _client(directory: Path) -> NodeClient:
    from node.client import NodeClient

    return NodeClient.for_directory(directory)


@click.group("node")
def node() -> None:
    """Run a node: enroll, sync, verify presentations, decide on sharing, keep a decision log."""


# -- init / run ------------------------------------------------------------------


@node.command("init")
@_dir_option
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
@_json_option
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
@_dir_option
def run(directory: Path) -> None:
    """Run the node: sync with the registry and serve the local API until SIGTERM or Ctrl-C."""
    import logging
    import sys

    from node.agent import NodeAgent

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    agent = NodeAgent.open(directory)
    click.echo(f"node {agent.config.node_id} starting (local API {agent.config.listen})", err=True)
    agent.run_forever()


# -- client commands ---------------------------------------------------------------


def _status_data(response: node_pb2.GetSyncStatusResponse, directory: Path) -> dict[str, Any]:
    from node.config import NodeConfig

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
        lines.append(f"  bundle      v{home['bundle_version']}, expires {_when(home['bundle_expires_at'])}")
    else:
        lines.append("  trusts      nothing yet (no trust bundle)")
    for partner in d["foreign"]:
        lines.append(
            f"  partner     {partner['jurisdiction']} bundle v{partner['bundle_version']} through agreement "
            f"{printable(partner.get('agreement_id', ''))}, expires {_when(partner['bundle_expires_at'])}"
        )
    lines.append(f"  last sync   {_when(d['last_sync'])}")
    policy = ", ".join(f"{level} {_duration(age)}" for level, age in sorted(d["staleness_policy"].items()))
    lines.append(f"  staleness   {policy}")
    if d["status_lists"]:
        rows = [
            [
                printable(s["uri"]),
                _duration(s["age_seconds"]),
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


@node.command("status")
@_dir_option
@_json_option
def status(directory: Path, json_output: bool) -> None:
    """What the running node trusts, how fresh its status lists are, and what is wrong."""
    client = _client(directory)
    try:
        data = _status_data(client.sync_status(), directory)
    finally:
        client.close()
    emit(data, json_output=json_output, human=_render_status)


@node.command("challenge")
@_dir_option
@_json_option
def challenge(directory: Path, json_output: bool) -> None:
    """A single-use nonce (and the audience) for a holder to bind a presentation to."""
    client = _client(directory)
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
            f"nonce     {d['nonce']}\naudience  {d['audience']}\nexpires   {_when(d['expires_at'])}\n"
            f"present with: clearance wallet present --nonce {d['nonce']} --aud {d['audience']} --disclose employer"
        ),
    )


@node.command("verify")
@click.argument("presentation_file")
@_dir_option
@_json_option
def verify(presentation_file: str, directory: Path, json_output: bool) -> None:
    """Verify a presentation (FILE, or - for stdin) offline at the running node."""
    from clearance.errors import MalformedError, Reason, VerificationError

    presentation = _read_text(presentation_file, "PRESENTATION_FILE")
    client = _client(directory)
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


@node.command("verify-visit")
@click.argument("presentation_file")
@click.option(
    "--assurance",
    "assurance_file",
    required=True,
    metavar="FILE",
    help="The visit assurance (clearance-visit+jwt).",
)
@_dir_option
@_json_option
def verify_visit(presentation_file: str, assurance_file: str, directory: Path, json_output: bool) -> None:
    """Check a visitor's visit assurance for this organization with their presentation (exit 3: refused)."""
    from clearance.errors import PolicyError

    client = _client(directory)
    try:
        result = client.verify_visit(
            _read_text(assurance_file, "--assurance"), _read_text(presentation_file, "PRESENTATION_FILE")
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


@node.command("authorize")
@click.argument("presentation_file")
@click.option("--label", "label_value", required=True, metavar="JSON_OR_FILE", help="The item's label.")
@click.option(
    "--facility",
    "facility_file",
    metavar="FILE",
    help="The recipient organization's facility presentation (default: this node's own organization).",
)
@_dir_option
@_json_option
def authorize(
    presentation_file: str, label_value: str, facility_file: str | None, directory: Path, json_output: bool
) -> None:
    """Decide whether a labelled item may be shared with the presenter (exit 3 on deny); logged.

    The label is {"jurisdiction", "level", "category", "releasable_to": [...]}.
    """
    label = _label(label_value)
    presentation = _read_text(presentation_file, "PRESENTATION_FILE")
    facility = _read_text(facility_file, "--facility") if facility_file else ""
    client = _client(directory)
    try:
        response = client.authorize(label, presentation, facility)
    finally:
        client.close()
    _emit_decision(response, label, json_output)


def _emit_decision(response: Any, label: Label, json_output: bool) -> None:
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


# -- decision log ------------------------------------------------------------------


@node.group("log")
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
@_dir_option
@_json_option
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
@_dir_option
@click.option("--after", default=0, show_default=True, help="Only decisions after this sequence number.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@_json_option
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
                    _when(e["at"]),
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


def _identity(directory: Path) -> Any:
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


@node.command("present-facility")
@_dir_option
@click.option("--aud", "audience", required=True, help="The verifying node's identifier.")
@click.option("--nonce", required=True, help="The verifying node's challenge.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write it to a file.")
def present_facility(directory: Path, audience: str, nonce: str, out: Path | None) -> None:
    """This organization's facility presentation for another node (to be named as recipient there)."""
    from clearance.keys import atomic_write

    presentation = _identity(directory).present(audience=audience, nonce=nonce)
    if out is None:
        click.echo(presentation)
    else:
        atomic_write(out, (presentation + "\n").encode(), mode=0o600)
        click.echo(f"facility presentation for {audience} written to {out}", err=True)


@node.command("facility-import")
@click.argument("credential_file")
@_dir_option
@_json_option
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
        _read_text(credential_file, "CREDENTIAL_FILE"),
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


# -- node to node -----------------------------------------------------------------


@node.group("peer")
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


def _peer_channel(endpoint: str, peer_ca: Path | None, insecure: bool) -> Any:
    from clearance.channel import open_channel
    from clearance.errors import InvalidArgumentError
    from node.config import check_endpoint, is_loopback_host

    check_endpoint(endpoint, "--peer")
    if insecure and not is_loopback_host(endpoint.rpartition(":")[0]):
        raise InvalidArgumentError("--insecure", "plaintext is allowed to a loopback peer only")
    return open_channel(endpoint, ca_pem=peer_ca.read_bytes() if peer_ca else None, insecure=insecure)


@peer.command("challenge")
@_peer_options
@_json_option
def peer_challenge(endpoint: str, peer_ca: Path | None, insecure: bool, json_output: bool) -> None:
    """A nonce of the peer node, for a person's presentation to it."""
    import grpc

    from clearance.rpc import to_error
    from clearance.v1 import node_pb2, node_pb2_grpc

    channel = _peer_channel(endpoint, peer_ca, insecure)
    try:
        response = node_pb2_grpc.PeerServiceStub(channel).PeerChallenge(
            node_pb2.PeerChallengeRequest(), timeout=30
        )
    except grpc.RpcError as exc:
        raise to_error(exc, peer=f"peer node {endpoint}") from None
    finally:
        channel.close()
    emit(
        {"nonce": response.nonce, "audience": response.audience},
        json_output=json_output,
        human=lambda d: f"nonce     {d['nonce']}\naudience  {d['audience']}",
    )


@peer.command("present")
@click.argument("presentation_file")
@click.option("--label", "label_value", required=True, metavar="JSON_OR_FILE", help="The item's label.")
@_peer_options
@_dir_option
@_json_option
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

    label = _label(label_value)
    presentation = _read_text(presentation_file, "PRESENTATION_FILE")
    channel = _peer_channel(endpoint, peer_ca, insecure)
    try:
        client = PeerClient(channel, _identity(directory), endpoint=endpoint)
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
    _emit_decision(response, label, json_output)
