"""``EnrollmentService``: a node enrolls with its organization's one-time token."""

from __future__ import annotations

from dataclasses import dataclass

from clearance.client.organizations import Node
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


@dataclass(frozen=True, slots=True)
class NodeEnrollment:
    """What an enrolled node receives; nothing here is trusted before the node verifies it."""

    node: Node
    trust_bundle: str
    root_jwk: str
    facility_credential: str
    """Empty when the organization holds no facility clearance."""


class Enrollment:
    """Calls of ``EnrollmentService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.EnrollmentServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def enroll_node(self, token: str, *, name: str, public_jwk: str) -> NodeEnrollment:
        """Spend the one-time ``token`` to register the node key ``public_jwk`` (a JWK as JSON)."""
        response = self._stub.EnrollNode(
            pb.EnrollNodeRequest(token=token, name=name, public_jwk=public_jwk), timeout=self._timeout
        )
        return NodeEnrollment(
            Node.from_pb(response.node),
            response.trust_bundle,
            response.root_jwk,
            response.facility_credential,
        )
