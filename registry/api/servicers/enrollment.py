"""The enrollment service: a node enrolls with a one-time token."""

from __future__ import annotations

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.conversions import node_pb
from registry.api.servicers.base import ServicerBase
from registry.workflows import enrollment


class EnrollmentServicer(ServicerBase, rpc.EnrollmentServiceServicer):
    @handler
    def EnrollNode(
        self, request: pb.EnrollNodeRequest, context: grpc.ServicerContext
    ) -> pb.EnrollNodeResponse:
        # One transaction: a failure leaves the token unused. Enrollment stands even when
        # the organization is not cleared yet; its facility credential is issued once it is.
        enrolled = enrollment.enroll_node(
            self.ctx, token=request.token, name=request.name, public_jwk=request.public_jwk
        )
        return pb.EnrollNodeResponse(
            node=node_pb(enrolled.node),
            trust_bundle=enrolled.trust_bundle,
            root_jwk=enrolled.root_jwk,
            facility_credential=enrolled.facility_credential,
        )
