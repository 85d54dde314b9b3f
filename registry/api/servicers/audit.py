"""The audit service: the hash-chained audit log, statistics, and the facts oversight checks."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.conversions import (
    audit_event_pb,
    chain_report_pb,
    credential_state_pb,
    issuance_fact_pb,
    keyset_page,
)
from registry.api.servicers.base import ServicerBase
from registry.workflows import facts, oversight, statistics


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

    @handler
    def GetMonthlyReport(
        self, request: pb.GetMonthlyReportRequest, context: grpc.ServicerContext
    ) -> pb.GetMonthlyReportResponse:
        return pb.GetMonthlyReportResponse(report=statistics.monthly_report(self.ctx, request.month))

    @handler
    def ListIssuanceFacts(
        self, request: pb.ListIssuanceFactsRequest, context: grpc.ServicerContext
    ) -> pb.ListIssuanceFactsResponse:
        listed = facts.issuance_facts(self.ctx, keyset_page(request.page))
        return pb.ListIssuanceFactsResponse(
            facts=[issuance_fact_pb(f) for f in listed.items], next_page_token=listed.next_page_token
        )

    @handler
    def ListCredentialStates(
        self, request: pb.ListCredentialStatesRequest, context: grpc.ServicerContext
    ) -> pb.ListCredentialStatesResponse:
        listed = facts.credential_states(self.ctx, keyset_page(request.page))
        return pb.ListCredentialStatesResponse(
            credentials=[credential_state_pb(f) for f in listed.items], next_page_token=listed.next_page_token
        )
