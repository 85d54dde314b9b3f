"""``AuditService``: the registry's hash-chained audit log and its statistics."""

from __future__ import annotations

from dataclasses import dataclass

from clearance.client.common import seconds_of
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event of the chain (it never holds personal data)."""

    sequence: int
    at: int | None
    actor: str
    action: str
    object_type: str
    object_id: str
    details_json: str
    hash: str
    previous_hash: str

    @classmethod
    def from_pb(cls, m: pb.AuditEvent) -> AuditEvent:
        return cls(
            sequence=m.sequence,
            at=seconds_of(m.at, m.HasField("at")),
            actor=m.actor,
            action=m.action,
            object_type=m.object_type,
            object_id=m.object_id,
            details_json=m.details_json,
            hash=m.hash,
            previous_hash=m.previous_hash,
        )


@dataclass(frozen=True, slots=True)
class AuditChainReport:
    """The result of walking the whole chain: intact, or where it first breaks and why."""

    intact: bool
    events_checked: int
    broken_at: int
    problem: str
    head_hash: str


class Audit:
    """Calls of ``AuditService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.AuditServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def events(
        self, *, after_sequence: int = 0, action: str = "", object_id: str = "", limit: int = 0
    ) -> list[AuditEvent]:
        request = pb.ListAuditEventsRequest(
            after_sequence=after_sequence, action=action, object_id=object_id, limit=limit
        )
        return [
            AuditEvent.from_pb(e) for e in self._stub.ListAuditEvents(request, timeout=self._timeout).events
        ]

    def verify_chain(self) -> AuditChainReport:
        r = self._stub.VerifyAuditChain(pb.VerifyAuditChainRequest(), timeout=self._timeout)
        return AuditChainReport(r.intact, r.events_checked, r.broken_at, r.problem, r.head_hash)

    def statistics(self) -> dict[str, int]:
        """Aggregate counts by state (what oversight sees instead of files)."""
        return dict(self._stub.GetStatistics(pb.GetStatisticsRequest(), timeout=self._timeout).counts)
