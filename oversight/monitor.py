"""The oversight monitor: checks the registry's process with the oversight role's read access.

``clearance oversight monitor`` runs :meth:`Monitor.run`, which

1. checks that the audit chain still contains the head the monitor verified
   last time, then verifies and replays every newer event, and asks the
   registry to walk its whole chain (:mod:`oversight.audit_follower`);
2. checks every personnel credential against the facts of the decision it
   was issued from (consent, the seven findings, a decider who investigated
   nothing, a second adjudicator for Top Secret, the level decided and within
   the facility's) and against what the chain itself shows (an issuance
   event, a favorable decision before it);
3. checks that every suspended or revoked credential has a recorded reason;
4. recounts each monthly report it is asked to check from the chain's
   events and compares every published cell.

Each mismatch is an :class:`~oversight.monitor_checks.Alert` stored in the
monitor's own SQLite file (:mod:`oversight.monitor_store`). It never sees
personal data: the oversight role cannot read it, and the facts it reads are
ids, levels, staff ids, times and hashes.

Where the transparency log plugs in. Two seams, both protocols:

* :class:`IssuanceSource` says which issuances to check. Today,
  :class:`RegistryFacts` lists every personnel credential the registry holds
  (a full pass per run). With the log, a ``LogIssuances`` source follows the
  log as a witness does (from the tree size it verified last, through a
  checkpoint cosigned by the witnesses the bundle names, each tile checked
  against it), and for every ``CREDENTIAL_ISSUED`` entry asks the registry
  for the fact whose credential commits to the entry's commitment, yielding
  it with the entry's index (or, for an entry no fact matches, an alert of
  its own). Every alert it leads to then carries ``log_index``.
* :class:`~oversight.audit_follower.HeadAnchors` says which audit heads the
  chain must still contain. Today, the head stored at the last run; with the
  log, every ``AUDIT_HEAD`` entry as well, which catches a tail deleted after
  the last run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from clearance.auditchain import GENESIS
from clearance.bundle import TrustBundle
from clearance.client import RegistryClient
from clearance.client.audit import Audit, AuditEvent, CredentialStateFact, IssuanceFact
from clearance.encoding import parse_json
from clearance.errors import MalformedError, NotFoundError, VerificationError
from clearance.keys import PublicKey
from clearance.statistics.report import Month, StatisticsReport, figures
from clearance.statistics.tally import CountedEvent, tally
from oversight.audit_follower import (
    StoredHead,
    check_anchors,
    check_whole_chain,
    event_details,
    follow,
    link_problem,
)
from oversight.monitor_checks import Alert, AlertKind, check_issuance, check_state, compare_report
from oversight.monitor_store import AuditHead, MonitorStore
from oversight.registry_trust import pin_root, root_jwk, trusted_bundle

STORE_NAME = "monitor.sqlite3"
PAGE = 500

Clock = Callable[[], int]


def system_clock() -> int:
    return int(time.time())


class IssuanceSource(Protocol):
    """The issuances a run checks, each with the transparency-log index it came from (None before the log)."""

    def issuances(self) -> Iterator[tuple[IssuanceFact, int | None]]: ...


@dataclass(frozen=True)
class RegistryFacts:
    """Every personnel credential the registry lists, and every credential that is not valid."""

    audit: Audit

    def issuances(self) -> Iterator[tuple[IssuanceFact, int | None]]:
        token = ""
        while True:
            page = self.audit.issuance_facts(page_size=PAGE, page_token=token)
            for fact in page:
                yield fact, None
            token = page.next_page_token
            if not token:
                return

    def credential_states(self) -> Iterator[CredentialStateFact]:
        token = ""
        while True:
            page = self.audit.credential_states(page_size=PAGE, page_token=token)
            yield from page
            token = page.next_page_token
            if not token:
                return


@dataclass
class MonitorRun:
    """What one run checked and found."""

    head: AuditHead
    events_verified: int = 0
    issuances_checked: int = 0
    states_checked: int = 0
    reports_checked: list[str] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    new_alerts: int = 0


class Monitor:
    """One oversight body's monitor of one registry, keeping its state in ``directory``."""

    def __init__(
        self,
        directory: Path,
        client: RegistryClient,
        *,
        clock: Clock = system_clock,
        issuances: IssuanceSource | None = None,
    ) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = MonitorStore(directory / STORE_NAME)
        self._client = client
        self._clock = clock
        self._facts = RegistryFacts(client.audit)
        self._issuances = issuances or self._facts

    def pin(self, root_fingerprint: str) -> PublicKey:
        """Pin the registry's root (first run); later runs follow its rotations from it.

        Raises:
            VerificationError: the registry's root has another fingerprint.
        """
        root = pin_root(self._client.publication, root_fingerprint)
        self.store.set_meta("root_jwk", root_jwk(root))
        return root

    def bundle(self) -> TrustBundle:
        """The registry's bundle, verified from the pinned root.

        Raises:
            NotFoundError: no root pinned yet.
            VerificationError: the bundle or a rotation does not verify.
        """
        stored = self.store.get_meta("root_jwk")
        if stored is None:
            raise NotFoundError("this monitor has pinned no root yet; run it once with --root-fingerprint")
        root = PublicKey.from_jwk(parse_json(stored, what="pinned root"))
        bundle, root = trusted_bundle(self._client.publication, root, self._clock())
        self.store.set_meta("root_jwk", root_jwk(root))
        return bundle

    def run(self, months: Sequence[Month] = ()) -> MonitorRun:
        """Check the chain, every issuance, every suspension and revocation, and the reports of ``months``.

        Raises:
            NotFoundError: no root pinned yet.
            VerificationError: the registry's bundle does not verify from the pinned root.
            TransportError: the registry could not be reached (nothing is stored then).
        """
        bundle = self.bundle()
        audit = self._client.audit
        start = self.store.head()
        anchored = check_anchors(audit, StoredHead(start))
        run = MonitorRun(start, alerts=list(anchored))
        if not anchored:
            walk = follow(audit, start)
            self.store.advance(walk.head, walk.replay)
            run.head, run.events_verified = walk.head, walk.verified
            run.alerts.extend(walk.alerts)
        run.alerts.extend(check_whole_chain(audit))
        for fact, log_index in self._issuances.issuances():
            issued_by = self.store.issuance(fact.credential_id)
            run.alerts.extend(
                check_issuance(
                    fact,
                    levels=bundle.levels,
                    issued_by=issued_by,
                    chain_decision=self.store.decision(fact.assessment_id) if fact.assessment_id else None,
                    facility_level=(
                        self.store.facility_at(fact.organization_id, issued_by.seq) if issued_by else None
                    ),
                    log_index=log_index,
                )
            )
            run.issuances_checked += 1
        for state in self._facts.credential_states():
            run.alerts.extend(check_state(state))
            run.states_checked += 1
        for month in months:
            run.alerts.extend(self.check_report(month, bundle))
            run.reports_checked.append(str(month))
        run.new_alerts = self.store.raise_alerts([a.row() for a in run.alerts], self._clock())
        return run

    def check_report(self, month: Month, bundle: TrustBundle) -> list[Alert]:
        """Fetch the registry's signed report of ``month`` and check it (:meth:`check_report_token`)."""
        return self.check_report_token(self._client.audit.monthly_report(str(month)), bundle)

    def check_report_token(self, token: str, bundle: TrustBundle) -> list[Alert]:
        """Verify a signed report and recount it from the audit chain; the alerts, recorded as checked."""
        try:
            report = StatisticsReport.verify(token, bundle)
        except (VerificationError, MalformedError) as exc:
            return [Alert(AlertKind.REPORT_INVALID, "report:?", str(exc))]
        concerns = f"report:{report.month}"
        alerts: list[Alert] = []
        if report.levels != bundle.levels:
            alerts.append(Alert(AlertKind.REPORT_INVALID, concerns, "its levels are not the bundle's"))
        events, problem = self._counted_events(report)
        if problem:
            alerts.append(Alert(AlertKind.REPORT_RANGE_WRONG, concerns, problem))
        else:
            recount = tally(events, start=report.month.start, end=report.month.end)
            alerts.extend(compare_report(str(report.month), report.tables, figures(recount, report.levels)))
        self.store.record_report(
            str(report.month),
            report.counted.through,
            report.counted.head,
            matched=not alerts,
            now=self._clock(),
        )
        return alerts

    def _counted_events(self, report: StatisticsReport) -> tuple[list[CountedEvent], str]:
        """The events the report says it counted, verified to chain; or why they are not the month's."""
        counted, month, audit = report.counted, report.month, self._client.audit
        before = _event(audit, counted.first - 1) if counted.first > 1 else None
        if before is not None and (before.at or 0) >= month.start:
            return [], f"event {before.sequence}, before the first counted, is already in {month}"
        previous = AuditHead(before.sequence, before.hash) if before else AuditHead(0, GENESIS)
        events: list[CountedEvent] = []
        while previous.seq < counted.through:
            page = audit.events(after_sequence=previous.seq, limit=1000)
            for event in page:
                if event.sequence > counted.through:
                    break
                broken = link_problem(event, previous)
                if broken:
                    return [], broken
                events.append(CountedEvent(event.sequence, event.at or 0, event.action, event_details(event)))
                previous = AuditHead(event.sequence, event.hash)
            if len(page) < 1000:
                break
        if previous.seq != counted.through or previous.hash != counted.head:
            return [], f"the chain does not reach event {counted.through} with hash {counted.head[:16]}"
        after = _event(audit, counted.through + 1)
        if report.complete and after is not None and (after.at or 0) < month.end:
            return [], f"event {after.sequence}, after the last counted, is still in {month}"
        return events, ""


def _event(audit: Audit, seq: int) -> AuditEvent | None:
    found = audit.events(after_sequence=seq - 1, limit=1)
    return found[0] if found and found[0].sequence == seq else None
