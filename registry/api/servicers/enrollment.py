"""The enrollment service: a node enrolls with a one-time token."""

from __future__ import annotations

import json

import grpc

from clearance.rpc import handler
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.conversions import node_pb
from registry.api.servicers.base import ServicerBase, root_jwk_json
from registry.publication import publisher
from registry.workflows import issuance


class EnrollmentServicer(ServicerBase, rpc.EnrollmentServiceServicer):
    @handler
    def EnrollNode(
        self, request: pb.EnrollNodeRequest, context: grpc.ServicerContext
    ) -> pb.EnrollNodeResponse:
        # One transaction: a failure leaves the token unused. Enrollment stands even when
        # the organization is not cleared yet; its facility credential is issued once it is.
        node, facility = issuance.enroll_node(
            self.ctx, token=request.token, name=request.name, public_jwk=request.public_jwk
        )
        bundle = publisher.bundle_token(self.ctx)
        root = self.ctx.keys.root
        root_jwk = json.dumps(root.public.jwk) if root else root_jwk_json(self.ctx)
        return pb.EnrollNodeResponse(
            node=node_pb(node), trust_bundle=bundle, root_jwk=root_jwk, facility_credential=facility
        )
