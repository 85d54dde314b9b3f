"""The demo's cast: registries served in this process, their staff (typed clients), and the people they clear."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clearance.client import RegistryClient
    from clearance.client.common import AssessmentItem

DAY = 86_400
CATEGORIES = ["cyber-threat", "joint-research", "supply-chain", "industrial-strategy"]


class Registry:
    """One registry: its server, and staff who call it over gRPC with their own keys."""

    def __init__(self, directory: Path, jurisdiction: str) -> None:
        from registry.api import server
        from registry.setup import init_registry

        self.jurisdiction = jurisdiction
        self.directory = directory
        port = free_port()
        ctx, admin = init_registry(directory, jurisdiction=jurisdiction, endpoint=f"127.0.0.1:{port}")
        self.ctx = ctx
        self.running = server.start(ctx, f"127.0.0.1:{port}", heartbeat=5.0, poll_interval=0.05)
        self.endpoint = f"127.0.0.1:{self.running.port}"
        self.ca_pem = (directory / "tls" / "ca.pem").read_bytes()
        self.audience = admin.audience
        assert ctx.keys.root is not None
        self.root_fingerprint = ctx.keys.root.kid
        self.staff = {"administrator": self._connect(admin.key, admin.principal)}

    def _connect(self, key: Any, principal: str) -> RegistryClient:
        from clearance.access import TokenSource
        from clearance.client import RegistryClient

        return RegistryClient.connect(
            self.endpoint,
            ca_pem=self.ca_pem,
            token=TokenSource(key, principal=principal, audience=self.audience),
            peer=f"{self.jurisdiction} registry",
        )

    def add_staff(self, name: str, role: str, organization_id: str = "", *, post: str = "") -> str:
        """A staff member of ``role``, reachable as :meth:`as_` ``(post or role)``; their staff id."""
        from clearance.client.common import Role
        from clearance.keys import SigningKey

        key = SigningKey.generate()
        staff = self.as_("administrator").staff.create(
            name, role=Role(role), organization_id=organization_id, public_jwk=json.dumps(key.public.jwk)
        )
        self.staff[post or role] = self._connect(key, staff.id)
        return staff.id

    def as_(self, post: str) -> RegistryClient:
        """The registry as the staff member of ``post`` (a role, or a name given at hiring) calls it."""
        return self.staff[post]

    def public(self) -> RegistryClient:
        """A client of the public publication API (no credential)."""
        from clearance.client import RegistryClient

        return RegistryClient.connect(self.endpoint, ca_pem=self.ca_pem, peer=f"{self.jurisdiction} registry")

    def stop(self) -> None:
        from registry.publication.partners import stop_partner_sync

        stop_partner_sync(self.ctx)
        for client in self.staff.values():
            client.close()
        self.running.stop(1.0)
        self.ctx.close()


def organization(registry: Registry, name: str, kind: str, level: str) -> str:
    from clearance.client.common import OrganizationKind

    admin = registry.as_("administrator")
    org = admin.organizations.create(name, kind=OrganizationKind(kind), country=registry.jurisdiction)
    admin.organizations.grant_facility(
        org.id, level=level, categories=CATEGORIES, valid_until=int(time.time()) + 5 * 365 * DAY
    )
    return org.id


def enroll_node(registry: Registry, organization_id: str, directory: Path, name: str) -> Any:
    from node.agent import NodeAgent
    from node.enrollment import enroll

    token = registry.as_("administrator").organizations.create_enrollment_token(organization_id).token
    enroll(
        directory,
        registry=registry.endpoint,
        root_fingerprint=registry.root_fingerprint,
        token=token,
        name=name,
        registry_ca=registry.ca_pem,
        listen="127.0.0.1:0",
        peer_listen="127.0.0.1:0",
        peer_insecure=True,
    )
    agent = NodeAgent.open(directory)
    agent.start()
    return agent


def assess(
    registry: Registry,
    organization_id: str,
    person: dict[str, str],
    *,
    level: str,
    categories: list[str],
    concern: AssessmentItem | None = None,
) -> tuple[str, str]:
    """Enroll a person and take them through consent, the seven findings and a decision.

    The organization's security officer enrolls the person and records their
    consent, the investigator records the findings, the adjudicator decides; a
    Top Secret decision is approved by the second adjudicator.
    """
    from clearance.client.common import AssessmentItem, AssessmentState, Decision, FindingOutcome
    from clearance.client.personnel import PersonalData

    officer, investigator = registry.as_("security_officer"), registry.as_("investigator")
    adjudicator = registry.as_("adjudicator")
    enrolled = officer.personnel.enroll(
        organization_id,
        PersonalData(person["given_name"], person["family_name"], person["birthdate"], person["nationality"]),
    )
    assessment = officer.assessments.open(enrolled.id, level=level, categories=categories)
    officer.assessments.record_consent(assessment.id, evidence="consent form signed in person")
    for item in AssessmentItem.all():
        found = item == concern
        investigator.assessments.record_finding(
            assessment.id,
            item=item,
            outcome=FindingOutcome.CONCERN if found else FindingOutcome.NO_CONCERN,
            summary=(
                "credit report shows an unpaid debt of 4.2 million yen"
                if found
                else "questionnaire, interview and records checked; nothing of concern"
            ),
        )
    decided = adjudicator.assessments.decide(
        assessment.id,
        decision=Decision.UNFAVORABLE if concern else Decision.FAVORABLE,
        reasons=(
            ["financial situation: an unpaid debt creates a risk of inducement"]
            if concern
            else ["all seven items assessed; no risk of leakage found"]
        ),
    )
    if decided.assessment.state is AssessmentState.AWAITING_APPROVAL:
        registry.as_("second adjudicator").assessments.approve(
            assessment.id, approve=True, comment="findings and reasons reviewed; I concur"
        )
    return enrolled.id, assessment.id


@dataclass
class Wallet:
    key: Any
    credential: str = ""
    record_id: str = ""


def issue(registry: Registry, assessment_id: str) -> Wallet:
    from clearance.client.credentials import IssueRequest
    from clearance.keys import SigningKey

    wallet = Wallet(SigningKey.generate())
    issued = registry.as_("adjudicator").credentials.issue(
        IssueRequest(assessment_id, json.dumps(wallet.key.public.jwk))
    )
    wallet.credential, wallet.record_id = issued.sd_jwt, issued.record.id
    return wallet


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
