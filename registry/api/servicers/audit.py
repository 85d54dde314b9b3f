"""The audit service: the hash-chained audit log and aggregate statistics."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.conversions import ts
from registry.api.servicers.base import ServicerBase
from registry.workflows import oversight


class AuditServicer(ServicerBase, rpc.AuditServiceServicer):
    @handler
    def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListAuditEventsResponse:
        events = oversight.list_events(
            self.ctx,
            after=request.after_sequence,
            action=request.action,
            object_id=request.object_id,
            limit=request.limit,
        )
        return pb.ListAuditEventsResponse(
            events=[
                pb.AuditEvent(
                    sequence=e.seq,
                    at=ts(e.at),
                    actor=e.actor,
                    action=e.action,
                    object_type=e.object_type,
                    object_id=e.object_id,
                    details_json=e.details,
                    hash=e.hash,
                    previous_hash=e.prev_hash,
                )
                for e in events
            ]
        )

    @handler
    def VerifyAuditChain(
        self, request: pb.VerifyAuditChainRequest, context: grpc.ServicerContext
    ) -> pb.VerifyAuditChainResponse:
        report = oversight.verify_chain(self.ctx)
        return pb.VerifyAuditChainResponse(
            intact=report.intact,
            events_checked=report.events_checked,
            broken_at=report.broken_at,
            problem=report.problem,
            head_hash=report.head_hash,
        )

    @handler
    def GetStatistics(
        self, request: pb.GetStatisticsRequest, context: grpc.ServicerContext
    ) -> pb.GetStatisticsResponse:
        return pb.GetStatisticsResponse(counts=oversight.counts(self.ctx))
