"""A client of a running node's local API, for the CLI and the organization's own Python systems.

It finds the node from its directory: the address the node bound
(``DIR/local-api.addr``, written at start) and the local token
(``DIR/local-token``). Failed calls raise the matching
:class:`~clearance.errors.ClearanceError` (:func:`clearance.rpc.to_error`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from clearance.channel import open_channel
from clearance.errors import TransportError
from clearance.rpc import to_error
from clearance.v1 import common_pb2 as common
from clearance.v1 import node_pb2 as pb
from clearance.v1 import node_pb2_grpc as rpc
from node import config as files
from node.config import LOCAL_ADDR, read_secret
from node.decisions import Label

T = TypeVar("T")


def label_pb(label: Label) -> common.Label:
    return common.Label(
        jurisdiction=label.jurisdiction,
        level=label.level,
        category=label.category,
        releasable_to=list(label.releasable_to),
    )


class NodeClient:
    """Stubs for ``NodeService`` over one channel, with the local token on every call."""

    def __init__(self, address: str, token: str) -> None:
        self.address = address
        self._channel = open_channel(address, insecure=True, token=lambda: token)
        self._stub = rpc.NodeServiceStub(self._channel)

    @classmethod
    def for_directory(cls, directory: Path) -> NodeClient:
        """A client of the node running from ``directory``.

        Raises:
            TransportError: the node is not running (no address file).
            StorageError: the token file is missing or readable by others.
        """
        address_file = Path(directory) / LOCAL_ADDR
        try:
            address = address_file.read_text("utf-8").strip()
        except FileNotFoundError:
            raise TransportError(
                f"the node in {directory} is not running (no {LOCAL_ADDR}); start it: clearance node run --dir {directory}"
            ) from None
        return cls(address, read_secret(Path(directory) / files.TOKEN_NAME))

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Callable[..., T], request: Any, timeout: float = 30.0) -> T:
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise to_error(exc, peer=f"node {self.address}") from None

    def challenge(self) -> pb.ChallengeResponse:
        return self._call(self._stub.Challenge, pb.ChallengeRequest())

    def verify(self, presentations: Sequence[str]) -> list[pb.Verification]:
        return list(
            self._call(self._stub.Verify, pb.VerifyRequest(presentations=list(presentations))).results
        )

    def authorize(
        self, label: Label, presentation: str, facility_presentation: str = ""
    ) -> pb.AuthorizeResponse:
        return self._call(
            self._stub.Authorize,
            pb.AuthorizeRequest(
                label=label_pb(label),
                presentation=presentation,
                facility_presentation=facility_presentation,
            ),
        )

    def verify_visit(self, assurance: str, presentation: str) -> pb.VerifyVisitResponse:
        return self._call(
            self._stub.VerifyVisit, pb.VerifyVisitRequest(assurance=assurance, presentation=presentation)
        )

    def sync_status(self) -> pb.GetSyncStatusResponse:
        return self._call(self._stub.GetSyncStatus, pb.GetSyncStatusRequest())
