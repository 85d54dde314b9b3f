"""The peer API of another organization's node: the call that needs no session, its challenge.

Opening a session and presenting to it need this node's facility identity
(:class:`node.peers.PeerClient`); asking a peer for a nonce does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from clearance.client.interceptor import ErrorMapping
from clearance.v1 import node_pb2 as pb
from clearance.v1 import node_pb2_grpc as rpc


@dataclass(frozen=True, slots=True)
class PeerChallenge:
    """A nonce of the peer node, and the audience a presentation to it must name."""

    nonce: str
    audience: str


class PeerNodeClient:
    """Calls of a peer node's ``PeerService`` over ``channel`` (closed with the client)."""

    def __init__(self, channel: grpc.Channel, *, endpoint: str, timeout: float = 30.0) -> None:
        self._raw = channel
        self._stub = rpc.PeerServiceStub(
            grpc.intercept_channel(channel, ErrorMapping(f"peer node {endpoint}"))
        )
        self._timeout = timeout

    def challenge(self) -> PeerChallenge:
        """A fresh nonce of the peer, for a person's presentation to it."""
        response = self._stub.PeerChallenge(pb.PeerChallengeRequest(), timeout=self._timeout)
        return PeerChallenge(response.nonce, response.audience)

    def close(self) -> None:
        self._raw.close()
