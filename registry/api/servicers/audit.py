"""The audit service: the hash-chained audit log and aggregate statistics."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.conversions import audit_event_pb, chain_report_pb
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
        return pb.ListAuditEventsResponse(events=[audit_event_pb(e) for e in events])

    @handler
    def VerifyAuditChain(
        self, request: pb.VerifyAuditChainRequest, context: grpc.ServicerContext
    ) -> pb.VerifyAuditChainResponse:
        return chain_report_pb(oversight.verify_chain(self.ctx))

    @handler
    def GetStatistics(
        self, request: pb.GetStatisticsRequest, context: grpc.ServicerContext
    ) -> pb.GetStatisticsResponse:
        return pb.GetStatisticsResponse(counts=oversight.counts(self.ctx))
