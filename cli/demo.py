"""The whole story, end to end, on loopback: two registries, two nodes, wallets, an agreement.

Everything runs for real: two registry gRPC servers (TLS, each on its own
SQLite file), two node agents (local API, peer API, watch-stream sync), staff
who call the registries' APIs with their own keys, wallets with holder keys.
Only the processes are shared: the servers run in this process, on
127.0.0.1, on ports chosen by the system.

The cast:

* the JP registry and the US registry;
* Kaiyo Quantum KK (a JP company) and its node; Lakeshore National
  Laboratory (a US lab) and its node;
* Hanako Yamada and Kenji Sato (researchers at Kaiyo Quantum, cleared by JP),
  Taro Suzuki (at Kaiyo Quantum, first refused, then heard on appeal).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clearance.client import RegistryClient
    from clearance.client.common import AssessmentItem

DAY = 86_400
CATEGORIES = ["cyber-threat", "joint-research", "supply-chain", "industrial-strategy"]


@dataclass
class Step:
    title: str
    outcome: str
    seconds: float


@dataclass
class Story:
    """What the demo did, step by step, and what it decided."""

    out: Path
    narrate: Callable[[str], None]
    steps: list[Step] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)

    def step(self, title: str, outcome: str) -> None:
        now = time.monotonic()
        self.steps.append(Step(title, outcome, round(now - self._started, 2)))
        self.narrate(f"  -> {outcome}")

    def say(self, text: str) -> None:
        self.narrate(text)


class Registry:
    """One registry: its server, and staff who call it over gRPC with their own keys."""

    def __init__(self, directory: Path, jurisdiction: str) -> None:
        from registry.api import server
        from registry.setup import init_registry

        self.jurisdiction = jurisdiction
        self.directory = directory
        port = _free_port()
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

    def add_staff(self, name: str, role: str, organization_id: str = "") -> None:
        from clearance.client.common import Role
        from clearance.keys import SigningKey

        key = SigningKey.generate()
        staff = self.as_("administrator").staff.create(
            name, role=Role(role), organization_id=organization_id, public_jwk=json.dumps(key.public.jwk)
        )
        self.staff[role] = self._connect(key, staff.id)

    def as_(self, role: str) -> RegistryClient:
        """The registry as the staff member of ``role`` calls it."""
        return self.staff[role]

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


def _organization(registry: Registry, name: str, kind: str, level: str) -> str:
    from clearance.client.common import OrganizationKind

    admin = registry.as_("administrator")
    org = admin.organizations.create(name, kind=OrganizationKind(kind), country=registry.jurisdiction)
    admin.organizations.grant_facility(
        org.id, level=level, categories=CATEGORIES, valid_until=int(time.time()) + 5 * 365 * DAY
    )
    return org.id


def _node(registry: Registry, organization_id: str, directory: Path, name: str) -> Any:
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


def _assess(
    registry: Registry,
    organization_id: str,
    person: dict[str, str],
    *,
    level: str,
    categories: list[str],
    concern: AssessmentItem | None = None,
) -> tuple[str, str]:
    """Enroll a person and take them through consent, the seven findings and a decision."""
    from clearance.client.common import AssessmentItem, Decision, FindingOutcome
    from clearance.client.personnel import PersonalData

    officer, adjudicator = registry.as_("security_officer"), registry.as_("adjudicator")
    enrolled = officer.personnel.enroll(
        organization_id,
        PersonalData(person["given_name"], person["family_name"], person["birthdate"], person["nationality"]),
    )
    assessment = officer.assessments.open(enrolled.id, level=level, categories=categories)
    officer.assessments.record_consent(assessment.id, evidence="consent form signed in person")
    for item in AssessmentItem.all():
        found = item == concern
        adjudicator.assessments.record_finding(
            assessment.id,
            item=item,
            outcome=FindingOutcome.CONCERN if found else FindingOutcome.NO_CONCERN,
            summary=(
                "credit report shows an unpaid debt of 4.2 million yen"
                if found
                else "questionnaire, interview and records checked; nothing of concern"
            ),
        )
    adjudicator.assessments.decide(
        assessment.id,
        decision=Decision.UNFAVORABLE if concern else Decision.FAVORABLE,
        reasons=(
            ["financial situation: an unpaid debt creates a risk of inducement"]
            if concern
            else ["all seven items assessed; no risk of leakage found"]
        ),
    )
    return enrolled.id, assessment.id


@dataclass
class Wallet:
    key: Any
    credential: str = ""
    record_id: str = ""


def _issue(registry: Registry, assessment_id: str) -> Wallet:
    from clearance.client.credentials import IssueRequest
    from clearance.keys import SigningKey

    wallet = Wallet(SigningKey.generate())
    issued = registry.as_("adjudicator").credentials.issue(
        IssueRequest(assessment_id, json.dumps(wallet.key.public.jwk))
    )
    wallet.credential, wallet.record_id = issued.sd_jwt, issued.record.id
    return wallet


def _wait(condition: Callable[[], bool], *, timeout: float, what: str) -> float:
    from clearance.errors import TransportError

    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TransportError(f"demo: {what} did not happen within {timeout:.0f}s")
        time.sleep(0.01)
    return time.monotonic() - started


def _holds_partner(agent: Any, jurisdiction: str) -> bool:
    """Whether ``agent``'s node holds the partner's bundle and every status list it names."""
    trust = agent.state.current
    partner = trust.foreign.get(jurisdiction)
    return partner is not None and all(
        location.uri in trust.status_lists for location in partner.bundle.status_lists
    )


def _record(story: Story, where: str, who: str, label: Any, decision: Any) -> dict[str, Any]:
    entry = {
        "node": where,
        "presenter": who,
        "label": {
            "jurisdiction": label.jurisdiction,
            "level": label.level,
            "category": label.category,
            "releasable_to": list(label.releasable_to),
        },
        "presenter_jurisdiction": decision.presenter_jurisdiction,
        "outcome": "allow" if decision.allowed else "deny",
        "reasons": list(decision.reasons),
        "agreement_id": decision.agreement_id,
        "mapped_level": decision.mapped_level,
    }
    story.decisions.append(entry)
    return entry


def run_demo(out: Path, narrate: Callable[[str], None]) -> Story:
    """Run the story; artifacts go to ``out``. Returns what happened."""
    from clearance.client.common import AssessmentItem
    from clearance.keys import atomic_write
    from clearance.sdjwt import present
    from clearance.statuslist import parse_status_list_token
    from node.decisions import Label
    from node.peers import PeerClient

    story = Story(out, narrate)
    work = out / "work"
    registries: list[Registry] = []
    agents: list[Any] = []
    try:
        story.say("1. Two national registries stand up (JP and US), each with its own root key and database.")
        jp = Registry(work / "jp-registry", "JP")
        us = Registry(work / "us-registry", "US")
        registries += [jp, us]
        story.step(
            "registries", f"JP on {jp.endpoint}, US on {us.endpoint} (TLS, SQLite, health and reflection on)"
        )

        story.say("2. Organizations get facility clearances; staff get their roles.")
        kaiyo = _organization(jp, "Kaiyo Quantum KK", "company", "SECRET")
        lakeshore = _organization(us, "Lakeshore National Laboratory", "laboratory", "SECRET")
        jp.add_staff("JP adjudicator", "adjudicator")
        jp.add_staff("Kaiyo Quantum security officer", "security_officer", kaiyo)
        jp.add_staff("JP oversight board", "oversight")
        us.add_staff("US adjudicator", "adjudicator")
        story.step(
            "facilities", "Kaiyo Quantum KK (JP) and Lakeshore National Laboratory (US) cleared to SECRET"
        )

        story.say("3. Each organization's node enrolls with a one-time token and pins its registry's root.")
        jp_node = _node(jp, kaiyo, work / "kaiyo-node", "kaiyo-gateway")
        us_node = _node(us, lakeshore, work / "lakeshore-node", "lakeshore-gateway")
        agents += [jp_node, us_node]
        story.step("nodes", f"kaiyo node {jp_node.config.node_id}, lakeshore node {us_node.config.node_id}")

        story.say("4. People consent and are assessed on the seven items; each decision comes with reasons.")
        hanako = {
            "given_name": "Hanako",
            "family_name": "Yamada",
            "birthdate": "1988-04-01",
            "nationality": "JP",
        }
        kenji = {"given_name": "Kenji", "family_name": "Sato", "birthdate": "1979-11-23", "nationality": "JP"}
        taro = {"given_name": "Taro", "family_name": "Suzuki", "birthdate": "1991-07-07", "nationality": "JP"}
        _, hanako_assessment = _assess(
            jp, kaiyo, hanako, level="SECRET", categories=["joint-research", "cyber-threat"]
        )
        _, kenji_assessment = _assess(jp, kaiyo, kenji, level="SECRET", categories=["joint-research"])
        _, taro_assessment = _assess(
            jp,
            kaiyo,
            taro,
            level="CONFIDENTIAL",
            categories=["supply-chain"],
            concern=AssessmentItem.FINANCIAL_SITUATION,
        )
        story.step(
            "assessments",
            "Hanako and Kenji favorable (valid ten years); Taro unfavorable, with a written notice",
        )

        story.say("5. Credentials are issued into the researchers' wallets, bound to their own keys.")
        hanako_wallet = _issue(jp, hanako_assessment)
        kenji_wallet = _issue(jp, kenji_assessment)
        atomic_write(out / "credential.sd-jwt", (hanako_wallet.credential + "\n").encode())
        story.step(
            "credentials", "SD-JWT VCs: clearance visible, names and employer disclosable only by the holder"
        )

        story.say("6. At home: Hanako presents to her company's node for a JP SECRET cyber-threat file.")
        challenge = jp_node.gatekeeper.challenge()
        presentation = present(
            hanako_wallet.credential,
            hanako_wallet.key,
            disclose=["employer"],
            audience=challenge.audience,
            nonce=challenge.nonce,
            issued_at=int(time.time()),
        )
        atomic_write(out / "presentation.sd-jwt", (presentation + "\n").encode())
        story.facts["presentation"] = {"nonce": challenge.nonce, "aud": challenge.audience}
        home_label = Label("JP", "SECRET", "cyber-threat", ("JP",))
        logged = jp_node.gatekeeper.authorize(home_label, presentation)
        entry = _record(story, "kaiyo", "Hanako Yamada", home_label, logged.decision)
        story.step("domestic share", f"{entry['outcome']}: {'; '.join(entry['reasons'][:1])}")

        story.say(
            "7. JP and US sign an agreement: SECRET<->SECRET, CONFIDENTIAL<->CONFIDENTIAL, categories opened."
        )
        from clearance.agreement import Agreement, Party

        now = int(time.time())
        assert jp.ctx.keys.root is not None
        assert us.ctx.keys.root is not None
        proposal = Agreement.propose(
            jp.ctx.keys.root,
            agreement_id="JP-US-joint-research",
            parties=(
                Party("JP", jp.ctx.keys.root.public, jp.ctx.config.issuer),
                Party("US", us.ctx.keys.root.public, us.ctx.config.issuer),
            ),
            levels=[("CONFIDENTIAL", "CONFIDENTIAL"), ("SECRET", "SECRET")],
            categories={"JP": ["joint-research", "cyber-threat"], "US": ["joint-research", "cyber-threat"]},
            issued_at=now,
            not_before=now,
            expires_at=now + 365 * DAY,
        )
        agreement = proposal.countersign(us.ctx.keys.root)
        document = json.dumps(agreement.to_json())
        atomic_write(out / "agreement.jwt", (json.dumps(agreement.to_json(), indent=2) + "\n").encode())
        jp.as_("administrator").federation.import_agreement(
            document, partner_endpoint=us.endpoint, partner_ca_pem=us.ca_pem.decode()
        )
        us.as_("administrator").federation.import_agreement(
            document, partner_endpoint=jp.endpoint, partner_ca_pem=jp.ca_pem.decode()
        )
        waited = _wait(
            lambda: _holds_partner(us_node, "JP") and _holds_partner(jp_node, "US"),
            timeout=30,
            what="partner trust material reaching the nodes",
        )
        story.step(
            "agreement",
            f"signed by both roots; partner material verified and at both nodes after {waited:.2f}s",
        )

        story.say(
            "8. Across the border: Hanako presents to the US lab's node, node to node (facilities authenticated)."
        )
        peer = PeerClient(
            _insecure(us_node.servers[1].address), jp_node.gatekeeper.facility, endpoint="lakeshore"
        )
        session = peer.open_session()
        results = {}
        labels = {
            "allowed": Label("US", "SECRET", "joint-research", ("US", "JP")),
            "not releasable": Label("US", "SECRET", "joint-research", ("US",)),
        }
        for name, label in labels.items():
            nonce, audience = peer.challenge()
            cross = present(
                hanako_wallet.credential,
                hanako_wallet.key,
                disclose=["employer"],
                audience=audience,
                nonce=nonce,
                issued_at=int(time.time()),
            )
            decision = peer.present(session.session_id, label, cross)
            results[name] = _record(story, "lakeshore", "Hanako Yamada", label, decision)
        story.step(
            "cross-border",
            f"US item releasable to JP: {results['allowed']['outcome']} via {results['allowed']['agreement_id']} "
            f"(JP SECRET -> US {results['allowed']['mapped_level']}); "
            f"US-only item: {results['not releasable']['outcome']}",
        )

        story.say(
            "   Hanako will also visit the lab: JP vouches for the visit; the lab's node checks it offline."
        )
        from clearance.client.federation import VisitKind

        visit = jp.as_("adjudicator").federation.issue_visit_assurance(
            hanako_wallet.record_id,
            host_jurisdiction="US",
            host_organization=lakeshore,
            programme="quantum-sensing-2027",
            kind=VisitKind.ONE_TIME,
            not_before=int(time.time()),
            not_after=int(time.time()) + 5 * DAY,
        )
        atomic_write(out / "visit-assurance.jwt", (visit + "\n").encode())
        visit_challenge = us_node.gatekeeper.challenge()
        at_gate = present(
            hanako_wallet.credential,
            hanako_wallet.key,
            audience=visit_challenge.audience,
            nonce=visit_challenge.nonce,
            issued_at=int(time.time()),
        )
        checked = us_node.gatekeeper.verify_visit(visit, at_gate)
        story.step(
            "visit",
            f"visit assurance for programme quantum-sensing-2027 at Lakeshore: "
            f"{'allowed' if checked.allowed else 'refused'} (no paper request for visit)",
        )

        story.say("9. JP revokes Kenji's credential; the US lab's node must deny him as soon as it learns.")
        nonce, audience = peer.challenge()
        before = present(
            kenji_wallet.credential,
            kenji_wallet.key,
            disclose=["employer"],
            audience=audience,
            nonce=nonce,
            issued_at=int(time.time()),
        )
        _record(
            story,
            "lakeshore",
            "Kenji Sato",
            labels["allowed"],
            peer.present(session.session_id, labels["allowed"], before),
        )
        record = jp.as_("administrator").credentials.get(kenji_wallet.record_id)
        uri, idx = record.status_list_uri, record.status_index
        revoked_at = time.monotonic()
        jp.as_("adjudicator").credentials.revoke(
            kenji_wallet.record_id, reason="left the programme; access withdrawn"
        )

        def denied_abroad() -> bool:
            held = us_node.state.current.status_lists.get(uri)
            return held is not None and held.status_of(idx) != 0

        _wait(denied_abroad, timeout=30, what="the revocation reaching the US node")
        elapsed = time.monotonic() - revoked_at
        nonce, audience = peer.challenge()
        after = present(
            kenji_wallet.credential,
            kenji_wallet.key,
            disclose=["employer"],
            audience=audience,
            nonce=nonce,
            issued_at=int(time.time()),
        )
        denial = _record(
            story,
            "lakeshore",
            "Kenji Sato",
            labels["allowed"],
            peer.present(session.session_id, labels["allowed"], after),
        )
        with jp.public() as public:
            token = public.publication.status_list(uri)
        parsed = parse_status_list_token(token)
        atomic_write(out / "status-list.jwt", (token + "\n").encode())
        atomic_write(out / "revoked-credential.sd-jwt", (kenji_wallet.credential + "\n").encode())
        story.facts["revoked"] = {"idx": idx, "uri": uri, "status": parsed.status_of(idx)}
        story.facts["revocation_seconds"] = round(elapsed, 3)
        story.step(
            "revocation",
            f"JP registry -> US registry -> US node in {elapsed:.3f}s; Kenji now: {denial['outcome']} ({denial['reasons'][0]})",
        )

        story.say("10. Taro appeals his refusal; the independent oversight body hears it.")
        notice = jp.as_("adjudicator").assessments.get_notice(taro_assessment)
        appeal = jp.as_("security_officer").assessments.file_appeal(
            taro_assessment,
            grounds="the debt was repaid in full in 2025; the credit record used is out of date",
        )
        resolved = jp.as_("oversight").assessments.resolve_appeal(
            appeal.id,
            uphold=True,
            resolution="the finding rested on inaccurate data; reassess the financial item",
        )
        story.facts["appeal"] = {"notice_reasons": list(notice.reasons), "appeal": appeal.id, "upheld": True}
        story.step(
            "appeal",
            f"notice gave reasons and a deadline; oversight upheld appeal {appeal.id}; assessment back to "
            f"{resolved.assessment.state.value}",
        )

        story.say("11. The audit trails hold: every change and every decision is hash-chained.")
        chain = jp.as_("administrator").audit.verify_chain()
        logs = [agent.decisions.verify() for agent in agents]
        story.step(
            "audit",
            f"JP registry chain intact ({chain.events_checked} events); node decision logs intact: "
            + ", ".join(str(getattr(r, "intact", r)) for r in logs),
        )

        with jp.public() as public:
            jwks = public.publication.jwks()
            bundle = public.publication.trust_bundle()
        atomic_write(out / "registry-jwks.json", (json.dumps(json.loads(jwks), indent=2) + "\n").encode())
        atomic_write(out / "trust-bundle.jwt", (bundle + "\n").encode())
        summary = {
            "presentation": story.facts["presentation"],
            "revoked": {"idx": idx, "uri": uri},
            "decisions": story.decisions,
            "revocation_propagation_seconds": story.facts["revocation_seconds"],
            "registries": {"JP": jp.endpoint, "US": us.endpoint},
            "root_fingerprints": {"JP": jp.root_fingerprint, "US": us.root_fingerprint},
            "steps": [{"step": s.title, "outcome": s.outcome, "at_seconds": s.seconds} for s in story.steps],
        }
        atomic_write(out / "demo.json", (json.dumps(summary, indent=2) + "\n").encode())
        return story
    finally:
        for agent in agents:
            agent.stop(0.5)
        for registry in registries:
            registry.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _insecure(address: str) -> Any:
    from clearance.channel import open_channel

    return open_channel(address, insecure=True)
