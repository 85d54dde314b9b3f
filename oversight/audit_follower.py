"""Following the registry's audit chain from the head the monitor last verified.

The monitor reads the chain through the oversight role's ``ListAuditEvents``
and trusts none of it: it first checks that the event at its stored head is
still there with the same hash (the head it saw is a prefix of today's
chain: a deleted tail or a rewritten history shows here), then recomputes
every newer event's hash (:func:`clearance.auditchain.event_hash`) and its
link to the one before. While it walks, it replays what later checks need
(:class:`~oversight.monitor_store.Replay`): facility clearances by sequence,
which event issued each credential, each assessment's decision; and it
checks that every event that suspends or revokes states a reason.

This compares with the head the monitor itself stored last time. Once the
registry writes its audit heads into the transparency log, the same
prefix check runs against every logged head (:class:`HeadAnchors`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from clearance.auditchain import event_hash
from clearance.client.audit import Audit, AuditEvent
from oversight.monitor_checks import Alert, AlertKind, check_state_event
from oversight.monitor_store import AuditHead, Decision, Replay

PAGE = 1000
"""Events per ``ListAuditEvents`` call (the registry's maximum)."""


class HeadAnchors(Protocol):
    """Audit heads the chain must still contain, each with where the monitor learned it.

    Today the only anchor is the head the monitor stored at its last run
    (``log_index`` None). The transparency log adds one per commit: the
    registry logs its audit head at every commit, witnesses cosign the log,
    and each logged head becomes an anchor with its entry's index, so a tail
    deleted after the monitor's last run is caught too.
    """

    def anchors(self) -> Iterable[tuple[AuditHead, int | None]]: ...


@dataclass(frozen=True)
class StoredHead:
    """The one anchor there is before the log: the head this monitor verified last."""

    head: AuditHead

    def anchors(self) -> Iterable[tuple[AuditHead, int | None]]:
        return [(self.head, None)] if self.head.seq else []


@dataclass
class ChainWalk:
    """What one walk verified, replayed and found wrong."""

    head: AuditHead
    replay: Replay = field(default_factory=Replay)
    alerts: list[Alert] = field(default_factory=list)
    verified: int = 0
    """Events whose hash and link the walk checked."""


def check_anchors(audit: Audit, anchors: HeadAnchors) -> list[Alert]:
    """Each anchored head must still be in the chain, with the same hash."""
    alerts = []
    for head, log_index in anchors.anchors():
        found = audit.events(after_sequence=head.seq - 1, limit=1)
        concerns = f"audit:{head.seq}"
        if not found or found[0].sequence != head.seq:
            detail = (
                f"the chain no longer reaches event {head.seq} (head {head.hash[:16]}): its tail was deleted"
            )
            alerts.append(Alert(AlertKind.AUDIT_TAIL_DELETED, concerns, detail, log_index))
        elif found[0].hash != head.hash:
            detail = f"event {head.seq} now hashes to {found[0].hash[:16]}, not {head.hash[:16]}"
            alerts.append(Alert(AlertKind.AUDIT_HISTORY_REWRITTEN, concerns, detail, log_index))
    return alerts


def check_whole_chain(audit: Audit) -> list[Alert]:
    """The registry's own walk of its whole chain (``VerifyAuditChain``), for an edit behind the head.

    The monitor verified each older event when it first read it; an event
    edited since, behind the head, shows only when the whole chain is walked.
    The registry walks it (oversight may ask); a registry that lies here is
    caught by the log's checkpoints instead.
    """
    report = audit.verify_chain()
    if report.intact:
        return []
    detail = f"the registry's own walk breaks at event {report.broken_at}: {report.problem}"
    return [Alert(AlertKind.AUDIT_CHAIN_BROKEN, f"audit:{report.broken_at}", detail)]


def follow(audit: Audit, start: AuditHead) -> ChainWalk:
    """Verify and replay every event after ``start``; stop at the first that does not chain."""
    walk = ChainWalk(start)
    while True:
        page = audit.events(after_sequence=walk.head.seq, limit=PAGE)
        for event in page:
            broken = link_problem(event, walk.head)
            if broken:
                walk.alerts.append(Alert(AlertKind.AUDIT_CHAIN_BROKEN, f"audit:{event.sequence}", broken))
                return walk
            details = event_details(event)
            _replay(walk.replay, event, details)
            walk.alerts.extend(check_state_event(event.sequence, event.action, details))
            walk.head = AuditHead(event.sequence, event.hash)
            walk.verified += 1
        if len(page) < PAGE:
            return walk


def link_problem(event: AuditEvent, previous: AuditHead) -> str:
    """Why ``event`` does not follow ``previous`` (empty: it does)."""
    if event.sequence != previous.seq + 1:
        return f"event {previous.seq + 1} is missing (next is {event.sequence})"
    if event.previous_hash != previous.hash:
        return f"event {event.sequence} does not link to event {previous.seq}"
    recomputed = event_hash(
        seq=event.sequence,
        at=event.at or 0,
        actor=event.actor,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        details=event.details_json,
        prev_hash=event.previous_hash,
    )
    if recomputed != event.hash:
        return f"event {event.sequence}'s content does not match its hash (edited)"
    return ""


def event_details(event: AuditEvent) -> dict[str, Any]:
    """An event's details as a dict (empty when they are not a JSON object)."""
    try:
        value = json.loads(event.details_json)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def principal_of(actor: str) -> str:
    """The staff id in an audit actor (``role:principal``)."""
    return actor.partition(":")[2] or actor


def _replay(replay: Replay, event: AuditEvent, details: dict[str, Any]) -> None:
    action, seq = event.action, event.sequence
    if action == "facility.grant":
        level = details.get("level")
        replay.facilities.append((event.object_id, seq, level if isinstance(level, str) else None))
    elif action == "facility.withdraw":
        replay.facilities.append((event.object_id, seq, None))
    elif action == "credential.issue":
        replay.issuances.append((event.object_id, seq, event.actor))
    elif action == "credential.bulk_issue":
        issued = details.get("credentials")
        for credential_id in issued if isinstance(issued, list) else ():
            replay.issuances.append((str(credential_id), seq, event.actor))
    elif action == "assessment.decide":
        in_effect = details.get("in_effect") is True or "awaiting_approval" not in details
        replay.decisions[event.object_id] = Decision(
            seq, str(details.get("decision", "")), in_effect, principal_of(event.actor), ""
        )
    elif action == "assessment.approve":
        approved = details.get("approved") is True
        replay.decisions[event.object_id] = (
            Decision(
                seq,
                str(details.get("decision", "")),
                True,
                str(details.get("decided_by", "")),
                principal_of(event.actor),
            )
            if approved
            else None
        )
    elif action == "appeal.resolve" and details.get("uphold") is True:
        replay.decisions[str(details.get("assessment_id", ""))] = None
