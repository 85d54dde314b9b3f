"""A real registry (in this process) and real node processes on loopback, with one injected clock.

:class:`SharedClock` is the time of the whole scenario: the registry reads it
directly, node processes read it from a file (``unsafe_clock_file``, allowed
by ``CLEARANCE_ALLOW_UNSAFE_CLOCK=1``). Tests advance it; nobody sleeps to
age a status list.

:class:`RegistryHarness` is the registry server (``registry.server.start``)
with an administrator and an adjudicator, and the staff workflow as methods:
organizations with facility clearances, enrollment tokens, personnel
credentials issued through the full assessment, suspension and revocation.

:class:`NodeProcess` runs ``python -m cli.main node run`` and waits for its
local API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.access import TokenSource
from clearance.client import RegistryClient
from clearance.client.common import AssessmentItem, Decision, FindingOutcome, OrganizationKind, Role
from clearance.client.credentials import IssueRequest
from clearance.client.personnel import PersonalData
from clearance.keys import SigningKey
from clearance.sdjwt import present
from node.clock import UNSAFE_CLOCK_ENV, write_clock_file
from node.config import LOCAL_ADDR, PEER_ADDR
from registry.api import server
from registry.context import RegistryContext
from registry.setup import init_registry
from tests.cli.conftest import REPO, Run, run_cli

YEAR = 365 * 86_400
CATEGORIES = ("cyber-threat", "joint-research")


class SharedClock:
    """Seconds since the epoch, the same for the registry and every node, moved only by the test."""

    def __init__(self, path: Path, start: int | None = None) -> None:
        self.path = path
        self.now = int(time.time()) if start is None else start
        write_clock_file(path, self.now)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds
        write_clock_file(self.path, self.now)


@dataclass
class Issued:
    credential_id: str
    sd_jwt: str
    holder: SigningKey


@dataclass
class Organization:
    id: str
    name: str


@dataclass
class RegistryHarness:
    directory: Path
    clock: SharedClock
    database_url: str
    tls: bool = False
    heartbeat: float = 1.0
    """Seconds of quiet before the registry tells a subscriber it is caught up."""
    ctx: RegistryContext | None = None
    running: server.RunningRegistry | None = None
    port: int = 0
    admin: Any = None
    adjudicator: tuple[SigningKey, str] | None = None
    investigator: tuple[SigningKey, str] | None = None
    clients: list[RegistryClient] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> RegistryHarness:
        if self.ctx is None:
            self.ctx, self.admin = init_registry(
                self.directory, jurisdiction="JP", database_url=self.database_url, clock=self.clock
            )
        else:
            self.ctx = server.open_context(self.directory, clock=self.clock, database_url=self.database_url)
        self.running = server.start(
            self.ctx,
            f"127.0.0.1:{self.port}",
            insecure=not self.tls,
            heartbeat=self.heartbeat,
            freshness_check=0.2,
            max_workers=64,
        )
        self.port = self.running.port
        if self.adjudicator is None:
            self.adjudicator = self._new_staff("Adjudicator", Role.ADJUDICATOR)
        if self.investigator is None:
            self.investigator = self._new_staff("Investigator", Role.INVESTIGATOR)
        return self

    def _new_staff(self, name: str, role: Role) -> tuple[SigningKey, str]:
        key = SigningKey.generate()
        staff = self._as().staff.create(name, role=role, public_jwk=json.dumps(key.public.jwk))
        return key, staff.id

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()
        if self.running is not None:
            self.running.stop(0.5)
            self.running = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        """The CA of the registry's TLS certificate (made by ``registry init``)."""
        return self.directory / "tls" / "ca.pem"

    @property
    def root_fingerprint(self) -> str:
        assert self.ctx is not None
        assert self.ctx.keys.root is not None
        return self.ctx.keys.root.kid

    # -- calls -----------------------------------------------------------------

    def _client(self, key: SigningKey, principal: str) -> RegistryClient:
        assert self.admin is not None
        token = TokenSource(key, principal=principal, audience=self.admin.audience, clock=self.clock)
        ca = self.ca_path.read_bytes() if self.tls else None
        client = RegistryClient.connect(self.endpoint, insecure=not self.tls, ca_pem=ca, token=token)
        self.clients.append(client)
        return client

    def _as(self, *, adjudicator: bool = False) -> RegistryClient:
        if adjudicator:
            assert self.adjudicator is not None
            return self._client(*self.adjudicator)
        return self._client(self.admin.key, self.admin.principal)

    # -- the staff workflow ----------------------------------------------------

    def organization(
        self, name: str, *, level: str = "SECRET", categories: tuple[str, ...] = CATEGORIES
    ) -> Organization:
        admin = self._as()
        org = admin.organizations.create(name, kind=OrganizationKind.COMPANY, country="JP")
        admin.organizations.grant_facility(
            org.id, level=level, categories=categories, valid_until=self.clock() + 5 * YEAR
        )
        return Organization(org.id, name)

    def enrollment_token(self, organization: Organization) -> str:
        token = self._as().organizations.create_enrollment_token(organization.id)
        assert token.root_fingerprint == self.root_fingerprint
        return token.token

    def withdraw_facility(self, organization: Organization) -> None:
        self._as().organizations.withdraw_facility(organization.id, reason="test")

    def issue(
        self, organization: Organization, *, level: str = "SECRET", categories: tuple[str, ...] = CATEGORIES
    ) -> Issued:
        person = self._as().personnel.enroll(
            organization.id, PersonalData("Hanako", "Yamada", "1988-04-01", "JP")
        )
        assert self.investigator is not None
        investigator, adjudicator = self._client(*self.investigator), self._as(adjudicator=True)
        assessment = investigator.assessments.open(person.id, level=level, categories=categories)
        investigator.assessments.record_consent(assessment.id, evidence="signed form")
        for item in AssessmentItem.all():
            investigator.assessments.record_finding(
                assessment.id, item=item, outcome=FindingOutcome.NO_CONCERN, summary="checked"
            )
        adjudicator.assessments.decide(assessment.id, decision=Decision.FAVORABLE, reasons=["no concerns"])
        holder = SigningKey.generate()
        issued = adjudicator.credentials.issue(IssueRequest(assessment.id, json.dumps(holder.public.jwk)))
        return Issued(issued.record.id, issued.sd_jwt, holder)

    def revoke(self, credential_id: str) -> None:
        self._as().credentials.revoke(credential_id, reason="test")

    def suspend(self, credential_id: str) -> None:
        self._as().credentials.suspend(credential_id, reason="test")

    def reinstate(self, credential_id: str) -> None:
        self._as().credentials.reinstate(credential_id, reason="test")


def presentation(
    issued: Issued, *, nonce: str, audience: str, at: int, disclose: tuple[str, ...] = ("employer",)
) -> str:
    """What the holder's wallet would send: key-bound to the node's nonce and audience."""
    return present(
        issued.sd_jwt, issued.holder, disclose=disclose, audience=audience, nonce=nonce, issued_at=at
    )


def node_env() -> dict[str, str]:
    return {**os.environ, UNSAFE_CLOCK_ENV: "1", "PYTHONPATH": str(REPO)}


def init_node(
    directory: Path,
    registry: RegistryHarness,
    token: str,
    *,
    clock: SharedClock,
    fingerprint: str | None = None,
    peer: bool = False,
    peer_tls: bool = False,
    staleness: dict[str, int] | None = None,
) -> Run:
    """``clearance node init`` (in this process), with the test clock file and fast retries.

    ``peer`` serves the peer API in plaintext on loopback; ``peer_tls`` over TLS (made by init).
    """
    args = [
        "node",
        "init",
        "--dir",
        str(directory),
        "--registry",
        registry.endpoint,
        *(["--registry-ca", str(registry.ca_path)] if registry.tls else ["--insecure"]),
        "--root-fingerprint",
        fingerprint or registry.root_fingerprint,
        "--token",
        token,
        "--listen",
        "127.0.0.1:0",
        "--unsafe-clock-file",
        str(clock.path),
        "--max-backoff",
        "1",
        "--poll-interval",
        "1",
        "--json",
    ]
    if peer:
        args += ["--peer-listen", "127.0.0.1:0", "--peer-insecure"]
    elif peer_tls:
        args += ["--peer-listen", "127.0.0.1:0"]
    for level, age in (staleness or {}).items():
        args += ["--staleness", f"{level}={age}"]
    return run_cli(args)


class NodeProcess:
    """``clearance node run --dir DIR`` as a child process."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory.parent / f"{directory.name}.log"

    def start(self, timeout: float = 20.0) -> NodeProcess:
        for name in (LOCAL_ADDR, PEER_ADDR):
            (self.directory / name).unlink(missing_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "node", "run", "--dir", str(self.directory)],
                cwd=REPO,
                env=node_env(),
                stdout=log,
                stderr=log,
            )
        try:
            wait_until(
                lambda: (self.directory / LOCAL_ADDR).exists(),
                timeout,
                f"node did not start; see {self.log}",
                alive=self.process,
            )
        except AssertionError:
            self.kill()  # a node that failed to start must not outlive the test
            raise
        return self

    @property
    def peer_address(self) -> str:
        return (self.directory / PEER_ADDR).read_text().strip()

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        self.process = None
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=20)
        self.process = None

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=20)


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    message: str,
    *,
    alive: subprocess.Popen[bytes] | None = None,
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` until true; fail with ``message`` after ``timeout`` seconds (or if ``alive`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"{message} (exited with {alive.returncode})")
        time.sleep(interval)
    raise AssertionError(message)
