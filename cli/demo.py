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
    pass

from cli.demo_cast import DAY, Registry, assess, enroll_node, issue, organization


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
        kaiyo = organization(jp, "Kaiyo Quantum KK", "company", "SECRET")
        lakeshore = organization(us, "Lakeshore National Laboratory", "laboratory", "SECRET")
        jp.add_staff("JP investigator", "investigator")
        jp.add_staff("JP adjudicator", "adjudicator")
        jp.add_staff("JP second adjudicator", "adjudicator", post="second adjudicator")
        jp.add_staff("Kaiyo Quantum security officer", "security_officer", kaiyo)
        jp.add_staff("JP oversight board", "oversight")
        us.add_staff("US adjudicator", "adjudicator")
        story.step(
            "facilities", "Kaiyo Quantum KK (JP) and Lakeshore National Laboratory (US) cleared to SECRET"
        )

        story.say("3. Each organization's node enrolls with a one-time token and pins its registry's root.")
        jp_node = enroll_node(jp, kaiyo, work / "kaiyo-node", "kaiyo-gateway")
        us_node = enroll_node(us, lakeshore, work / "lakeshore-node", "lakeshore-gateway")
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
        _, hanako_assessment = assess(
            jp, kaiyo, hanako, level="SECRET", categories=["joint-research", "cyber-threat"]
        )
        _, kenji_assessment = assess(jp, kaiyo, kenji, level="SECRET", categories=["joint-research"])
        _, taro_assessment = assess(
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
        hanako_wallet = issue(jp, hanako_assessment)
        kenji_wallet = issue(jp, kenji_assessment)
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

        story.say(
            "12. The oversight body checks the JP registry without trusting it or reading personal data:"
            " signed statistics, then its monitor."
        )
        from cli.demo_oversight import oversee

        oversight = oversee(jp, out, work, hanako_wallet.record_id)
        story.facts["oversight"] = oversight
        story.step(
            "oversight",
            f"statistics of {oversight['month']} verified, charts drawn; monitor: "
            f"{oversight['clean']['issuances_checked']} issuances checked, "
            f"{len(oversight['clean']['alerts'])} alerts; a credential planted in the database: "
            + "; ".join(oversight["planted"]["alerts"]),
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
            "oversight": story.facts["oversight"],
            "steps": [{"step": s.title, "outcome": s.outcome, "at_seconds": s.seconds} for s in story.steps],
        }
        atomic_write(out / "demo.json", (json.dumps(summary, indent=2) + "\n").encode())
        return story
    finally:
        for agent in agents:
            agent.stop(0.5)
        for registry in registries:
            registry.stop()


def _insecure(address: str) -> Any:
    from clearance.channel import open_channel

    return open_channel(address, insecure=True)
