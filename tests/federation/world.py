"""Two countries run through the ``clearance`` command, as their operators would run them.

Each registry is ``clearance registry init`` then ``clearance registry serve``
in a process of its own, with TLS (the default) on a loopback port chosen
before init, so that the address in the administrator's credential, the TLS
certificate, the partner endpoint the other registry follows and the node's
configuration all agree, and a restarted registry comes back where its
partner and nodes look for it. Each node is ``clearance node init`` then
``clearance node run`` (a process). Everything else (organizations, staff,
people, assessments, credentials, wallets, the agreement, presentations,
decisions) is a ``clearance`` command run in this process through the console
entry point (:func:`tests.cli.conftest.run_cli`): the same code path as a
shell, without a new interpreter per command.

Nothing here sleeps for a fixed time: every wait polls a condition a user
could check with a command (``node status``, ``agreement list``), with a
timeout that fails the test.
"""

from __future__ import annotations

import datetime
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli import exits
from node.clock import write_clock_file
from node.config import PEER_ADDR
from tests.cli.conftest import REPO, Run, clearance_command, run_cli
from tests.node.harness import NodeProcess, wait_until

CATEGORIES = ("joint-research", "cyber-threat")
ITEMS = (
    "family_and_cohabitants",
    "criminal_and_disciplinary_history",
    "information_handling_violations",
    "drug_abuse",
    "mental_illness",
    "alcohol_moderation",
    "financial_situation",
)


def clearance(*args: str) -> Any:
    """``clearance ARGS --json``, which must succeed; its JSON output."""
    run = run_cli([*args, "--json"])
    assert run.exit_code == exits.OK, f"clearance {' '.join(args)} exited {run.exit_code}: {run.stderr}"
    return run.json()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop_all(processes: Sequence[subprocess.Popen[bytes] | None], timeout: float = 30.0) -> None:
    """SIGTERM every process at once, then wait (graceful shutdowns overlap instead of queueing)."""
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class RegistryServer:
    """A registry directory and its ``clearance registry serve`` process."""

    def __init__(self, directory: Path, jurisdiction: str, database_url: str) -> None:
        self.directory = directory
        self.jurisdiction = jurisdiction
        self.database_url = database_url
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory.parent / f"{directory.name}.log"
        self._log_offset = 0
        self.root_fingerprint = ""

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.directory / "tls" / "ca.pem"

    @property
    def admin(self) -> Path:
        return self.directory / "admin.json"

    def init(self) -> RegistryServer:
        """``registry init``: SQLite in the directory, or the PostgreSQL schema under test."""
        database = ["--database-url", self.database_url] if self.database_url.startswith("postg") else []
        created = clearance(
            "registry",
            "init",
            "--dir",
            str(self.directory),
            "--jurisdiction",
            self.jurisdiction,
            "--endpoint",
            self.endpoint,
            *database,
        )
        assert created["database"] == ("postgresql" if database else "sqlite (embedded)")
        self.root_fingerprint = created["root_fingerprint"]
        return self

    def launch(self) -> None:
        """Start ``registry serve`` (TLS); :meth:`wait_serving` waits for it."""
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *clearance_command(),
                    "registry",
                    "serve",
                    "--dir",
                    str(self.directory),
                    "--listen",
                    self.endpoint,
                ],
                cwd=REPO,
                stdout=log,
                stderr=log,
            )

    def wait_serving(self, timeout: float = 30.0) -> None:
        def serving() -> bool:
            return "serving on" in self.log.read_bytes()[self._log_offset :].decode(errors="replace")

        wait_until(
            serving,
            timeout,
            f"registry {self.jurisdiction} did not start; see {self.log}",
            alive=self.process,
        )

    def start(self) -> RegistryServer:
        self.launch()
        self.wait_serving()
        return self

    def kill(self) -> None:
        """An outage: the process dies at once, without a goodbye to anyone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


class Node:
    """A node directory and its ``clearance node run`` process."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process = NodeProcess(directory)

    @property
    def dir(self) -> str:
        return str(self.directory)

    @property
    def peer(self) -> str:
        return (self.directory / PEER_ADDR).read_text().strip()

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = clearance("node", "status", "--dir", self.dir)
        return status

    def holds_partner(self, jurisdiction: str, list_uri: str) -> bool:
        """Whether the node trusts ``jurisdiction`` (through the agreement) and holds its status list."""
        status = self.status()
        return any(f["jurisdiction"] == jurisdiction for f in status["foreign"]) and any(
            s["uri"] == list_uri for s in status["status_lists"]
        )

    def list_status(self, uri: str) -> dict[str, Any]:
        return next(s for s in self.status()["status_lists"] if s["uri"] == uri)


@dataclass
class Researcher:
    """A cleared person: their wallet directory, and the registry's ids for them."""

    name: str
    wallet: Path
    person_id: str
    credential_id: str

    def present(self, nonce: str, audience: str, out: Path, *, disclose: str = "employer") -> Path:
        """``clearance wallet present``: key-bound to the verifier's nonce and audience."""
        options = ["--disclose", disclose] if disclose else []
        clearance(
            "wallet",
            "present",
            "--wallet",
            str(self.wallet),
            "--nonce",
            nonce,
            "--aud",
            audience,
            *options,
            "--out",
            str(out),
        )
        return out


@dataclass
class Country:
    """A registry, its staff's credentials, one cleared organization and its node."""

    jurisdiction: str
    registry: RegistryServer
    work: Path
    organization: str = ""
    organization_name: str = ""
    adjudicator: Path | None = None
    investigator: Path | None = None
    node: Node | None = None

    @property
    def list_uri(self) -> str:
        """The registry's first status list (where its credentials' statuses are)."""
        return f"https://registry.{self.jurisdiction.lower()}.clearance.example/statuslists/1"

    def admin(self, *args: str) -> Any:
        return clearance(*args, "--credential", str(self.registry.admin))

    def adjudicate(self, *args: str) -> Any:
        assert self.adjudicator is not None
        return clearance(*args, "--credential", str(self.adjudicator))

    def investigate(self, *args: str) -> Any:
        assert self.investigator is not None
        return clearance(*args, "--credential", str(self.investigator))

    def found(self, name: str, kind: str, level: str = "SECRET") -> str:
        """An organization with a facility clearance; the first one is this country's own."""
        org = self.admin("org", "create", name, "--kind", kind, "--country", self.jurisdiction)["id"]
        categories = [option for category in CATEGORIES for option in ("--category", category)]
        self.admin("org", "grant-facility", org, "--level", level, *categories)
        if not self.organization:
            self.organization, self.organization_name = org, name
        return str(org)

    def hire_adjudicator(self) -> None:
        """An adjudicator, and the investigator whose findings they decide on."""
        self.adjudicator = self.work / f"{self.jurisdiction.lower()}-adjudicator.json"
        self.investigator = self.work / f"{self.jurisdiction.lower()}-investigator.json"
        for role, out in (("adjudicator", self.adjudicator), ("investigator", self.investigator)):
            self.admin("staff", "create", f"{self.jurisdiction} {role}", "--role", role, "--out", str(out))

    def enroll_node(self, *, staleness: dict[str, int] | None = None, clock_file: Path | None = None) -> Node:
        """``node init`` for this country's organization: registry over TLS, peer API on loopback."""
        token = self.admin("org", "enrollment-token", self.organization)["token"]
        node = self.node = Node(self.work / f"{self.jurisdiction.lower()}-node")
        options = [
            option for level, age in (staleness or {}).items() for option in ("--staleness", f"{level}={age}")
        ]
        if clock_file is not None:
            options += ["--unsafe-clock-file", str(clock_file)]
        enrolled = clearance(
            "node",
            "init",
            "--dir",
            node.dir,
            "--registry",
            self.registry.endpoint,
            "--registry-ca",
            str(self.registry.ca),
            "--root-fingerprint",
            self.registry.root_fingerprint,
            "--token",
            token,
            "--name",
            f"{self.organization_name} gateway",
            "--listen",
            "127.0.0.1:0",
            "--peer-listen",
            "127.0.0.1:0",
            "--peer-insecure",
            "--poll-interval",
            "1",
            "--max-backoff",
            "1",
            *options,
        )
        assert enrolled["facility_credential"] is True
        return node

    def clear(self, given: str, family: str, *, level: str = "SECRET") -> Researcher:
        """Enroll, consent, the seven findings, a favorable decision; the credential into a new wallet."""
        person = self.admin(
            "person",
            "enroll",
            "--org",
            self.organization,
            "--given-name",
            given,
            "--family-name",
            family,
            "--birthdate",
            "1985-12-10",
            "--nationality",
            self.jurisdiction,
        )["id"]
        categories = [option for category in CATEGORIES for option in ("--category", category)]
        assessment = self.investigate("assessment", "open", person, "--level", level, *categories)["id"]
        self.investigate("assessment", "consent", assessment, "--evidence", "consent form signed in person")
        for item in ITEMS:
            self.investigate(
                "assessment",
                "finding",
                assessment,
                "--item",
                item,
                "--outcome",
                "no_concern",
                "--summary",
                "questionnaire, interview and records checked",
            )
        self.adjudicate(
            "assessment", "decide", assessment, "--favorable", "--reason", "no risk of leakage found"
        )
        wallet = self.work / f"wallet-{given.lower()}"
        clearance("wallet", "init", "--wallet", str(wallet))
        issued = wallet / "issued.sd-jwt"
        credential = self.adjudicate(
            "credential", "issue", assessment, "--wallet", str(wallet), "--out", str(issued)
        )
        clearance("wallet", "import", str(issued), "--wallet", str(wallet))
        return Researcher(f"{given} {family}", wallet, person, credential["credential"]["id"])

    def agreement(self, agreement_id: str) -> dict[str, Any]:
        return next(a for a in self.admin("agreement", "list")["agreements"] if a["id"] == agreement_id)


class WallClockFile:
    """A node's unsafe clock file holding the wall clock plus an offset the test sets.

    Rewritten five times a second by a thread, so the node's time moves like
    the wall clock (presentations stamped by a wallet stay recent); setting the
    offset rewrites it at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._tick, name="node-clock", daemon=True)
        self._thread.start()

    def now(self) -> int:
        return int(time.time()) + self.offset

    def set_offset(self, seconds: int) -> None:
        with self._lock:
            self.offset = seconds
            self._write_locked()

    def _write(self) -> None:
        with self._lock:
            self._write_locked()

    def _write_locked(self) -> None:
        write_clock_file(self.path, self.now())

    def _tick(self) -> None:
        while not self._stop.wait(0.2):
            self._write()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Federation:
    """JP (a company, Kaiyo Quantum KK) and the US (a lab, Lakeshore National Laboratory), each with
    a registry and a node, and an agreement between the registries negotiated through the CLI."""

    jp: Country
    us: Country
    agreement_id: str
    work: Path
    clock: WallClockFile | None = None

    def peer_present(self, researcher: Researcher, label: dict[str, Any], name: str) -> Run:
        """How a US lab receives a JP item: the lab's node asks the JP company's node, node to node.

        The lab's node opens a session with the JP node (each authenticates with
        its organization's facility credential), the researcher binds a
        presentation to a nonce of the JP node, and the JP node decides with the
        lab as the recipient organization: the recipient's facility credential
        comes from the same registry as the researcher's credential, and the
        researcher discloses the lab as employer. (``node authorize`` at the JP
        node would make the JP company the recipient: a US researcher is not its
        employee, and is refused as ``recipient_other_registry``.)
        """
        jp_node, us_node = self.jp.node, self.us.node
        assert jp_node is not None
        assert us_node is not None
        challenge = clearance("node", "peer", "challenge", "--peer", jp_node.peer, "--insecure")
        presentation = researcher.present(
            challenge["nonce"], challenge["audience"], self.work / f"{name}.sd-jwt"
        )
        return run_cli(
            [
                "node",
                "peer",
                "present",
                str(presentation),
                "--label",
                json.dumps(label),
                "--peer",
                jp_node.peer,
                "--insecure",
                "--dir",
                us_node.dir,
                "--json",
            ]
        )

    def at_jp_node(self, researcher: Researcher, name: str) -> Path:
        """A presentation of ``researcher`` bound to a fresh challenge of the JP node (local API)."""
        assert self.jp.node is not None
        challenge = clearance("node", "challenge", "--dir", self.jp.node.dir)
        return researcher.present(challenge["nonce"], challenge["audience"], self.work / f"{name}.sd-jwt")


def negotiate(jp: Country, us: Country, agreement_id: str, work: Path) -> None:
    """The agreement, as the documentation tells the two registries to make it.

    JP proposes where its root key is, fetching the US bundle from the US
    registry and checking it against the US root fingerprint it was given out
    of band; the US countersigns where its root is; both administrators import it.
    """
    proposal, signed = work / "proposal.json", work / "agreement.json"
    terms = clearance(
        "agreement",
        "propose",
        "--dir",
        str(jp.registry.directory),
        "--partner-endpoint",
        us.registry.endpoint,
        "--partner-ca",
        str(us.registry.ca),
        "--partner-fingerprint",
        us.registry.root_fingerprint,
        "--map",
        "CONFIDENTIAL=CONFIDENTIAL",
        "--map",
        "SECRET=SECRET",
        "--category",
        "joint-research",
        "--category",
        "cyber-threat",
        "--id",
        agreement_id,
        "--out",
        str(proposal),
    )
    assert terms["signed_by"] == ["JP"]
    assert clearance(
        "agreement", "sign", str(proposal), "--dir", str(us.registry.directory), "--out", str(signed)
    )["signed_by"] == ["JP", "US"]
    jp.admin(
        "agreement",
        "import",
        str(signed),
        "--partner-endpoint",
        us.registry.endpoint,
        "--partner-ca",
        str(us.registry.ca),
    )
    us.admin(
        "agreement",
        "import",
        str(signed),
        "--partner-endpoint",
        jp.registry.endpoint,
        "--partner-ca",
        str(jp.registry.ca),
    )


class Processes:
    """Every registry and node a test started, stopped together when it ends (however it ends)."""

    def __init__(self) -> None:
        self._owners: list[RegistryServer | NodeProcess] = []

    def track(self, owner: RegistryServer | NodeProcess) -> None:
        self._owners.append(owner)

    def stop(self) -> None:
        stop_all([owner.process for owner in self._owners])
        for owner in self._owners:
            owner.process = None


def build_federation(
    work: Path,
    jp_database_url: str,
    us_database_url: str,
    *,
    jp_staleness: dict[str, int],
    us_configure: Callable[[Path], None] | None = None,
    with_us_node: bool = True,
    processes: Processes,
    clock: WallClockFile | None = None,
    agreement_id: str = "JP-US-2026",
) -> Federation:
    """Both registries served, an organization and a node each, the agreement in force at both
    nodes (partner bundle and status lists held). ``us_configure`` may edit the US registry's
    directory (its ``registry.toml``) before it is served."""
    jp = Country("JP", RegistryServer(work / "jp-registry", "JP", jp_database_url).init(), work)
    us = Country("US", RegistryServer(work / "us-registry", "US", us_database_url).init(), work)
    if us_configure is not None:
        us_configure(us.registry.directory)
    for country in (jp, us):
        processes.track(country.registry)
        country.registry.launch()
    for country in (jp, us):
        country.registry.wait_serving()
    jp.found("Kaiyo Quantum KK", "company")
    us.found("Lakeshore National Laboratory", "laboratory")
    for country in (jp, us):
        country.hire_adjudicator()
    jp.enroll_node(staleness=jp_staleness, clock_file=clock.path if clock else None)
    nodes = [jp]
    if with_us_node:
        us.enroll_node()
        nodes.append(us)
    for country in nodes:
        assert country.node is not None
        processes.track(country.node.process)
        country.node.process.start()
    negotiate(jp, us, agreement_id, work)
    assert jp.node is not None
    jp_node = jp.node
    wait_until(
        lambda: jp_node.holds_partner("US", us.list_uri), 30, "the US material did not reach the JP node"
    )
    if us.node is not None:
        us_node = us.node
        wait_until(
            lambda: us_node.holds_partner("JP", jp.list_uri), 30, "the JP material did not reach the US node"
        )
    return Federation(jp, us, agreement_id, work, clock)


def seconds_of(timestamp: str | None) -> int:
    """An RFC 3339 time as ``agreement list --json`` prints it, in epoch seconds (0 if absent)."""
    if not timestamp:
        return 0
    return int(datetime.datetime.fromisoformat(timestamp).timestamp())
