"""``PublicationService``: the signed documents a registry publishes, read or followed as a stream.

These calls need no credential: nodes, partner registries and anyone else
read them, and trust what they read only after verifying its signatures.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from clearance.client.interceptor import MappedStream
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc


class UpdateKind(enum.StrEnum):
    """What one push message carries."""

    TRUST_BUNDLE = "trust_bundle"
    STATUS_LIST = "status_list"
    STATUS_DELTA = "status_delta"
    FOREIGN_BUNDLE = "foreign_bundle"
    ROOT_ROTATION = "root_rotation"
    HEARTBEAT = "heartbeat"
    """Nothing new: the subscriber is caught up."""
    UNKNOWN = "unknown"
    """A kind newer than this client."""


@dataclass(frozen=True, slots=True)
class Update:
    """One push message: a signed document (``document``), or a heartbeat (``heartbeat_at``)."""

    kind: UpdateKind
    document: str = ""
    heartbeat_at: int | None = None

    @classmethod
    def from_pb(cls, message: pb.WatchResponse) -> Update:
        which = message.WhichOneof("update")
        if which == "heartbeat":
            return cls(UpdateKind.HEARTBEAT, heartbeat_at=int(message.heartbeat.seconds))
        if which is None:
            return cls(UpdateKind.UNKNOWN)
        try:
            kind = UpdateKind(which)
        except ValueError:
            return cls(UpdateKind.UNKNOWN)
        return cls(kind, document=str(getattr(message, which)))


@dataclass(frozen=True, slots=True)
class Held:
    """What a subscriber already holds, so that the stream sends only what is newer."""

    bundle_version: int = 0
    status_lists: Mapping[str, int] = field(default_factory=dict)
    """Status list URI -> the sequence number held."""
    foreign_bundle_versions: Mapping[str, int] = field(default_factory=dict)

    def to_pb(self) -> pb.WatchRequest:
        return pb.WatchRequest(
            bundle_version=self.bundle_version,
            status_lists=[pb.HeldStatusList(uri=u, sequence=s) for u, s in self.status_lists.items()],
            foreign_bundle_versions=dict(self.foreign_bundle_versions),
        )


@dataclass(frozen=True, slots=True)
class RootHistory:
    rotations: tuple[str, ...]
    """Root rotation documents, oldest first."""
    root_jwk: str
    """The current root public key (a JWK as JSON)."""


class Publication:
    """Calls of ``PublicationService``; every failure raises a :class:`~clearance.errors.ClearanceError`."""

    def __init__(self, stub: rpc.PublicationServiceStub, timeout: float) -> None:
        self._stub = stub
        self._timeout = timeout

    def trust_bundle(self, jurisdiction: str = "", *, timeout: float | None = None) -> str:
        """The registry's signed trust bundle (or a partner's it holds, by ``jurisdiction``)."""
        request = pb.GetTrustBundleRequest(jurisdiction=jurisdiction)
        return self._stub.GetTrustBundle(request, timeout=timeout or self._timeout).bundle

    def status_list(self, uri: str, *, timeout: float | None = None) -> str:
        """The Status List Token published at ``uri``."""
        request = pb.GetStatusListRequest(uri=uri)
        return self._stub.GetStatusList(request, timeout=timeout or self._timeout).token

    def jwks(self) -> str:
        """The issuer's JWK Set, as JSON."""
        return self._stub.GetJwks(pb.GetJwksRequest(), timeout=self._timeout).jwks_json

    def root_history(self) -> RootHistory:
        response = self._stub.GetRootHistory(pb.GetRootHistoryRequest(), timeout=self._timeout)
        return RootHistory(tuple(response.rotations), response.root_jwk)

    def watch(self, held: Held | None = None, *, timeout: float | None = None) -> MappedStream[Update]:
        """Follow the registry's changes: newer documents than ``held``, then heartbeats and pushes.

        The stream raises our error when it breaks; :meth:`MappedStream.cancel` ends it.
        """
        call = self._stub.Watch((held or Held()).to_pb(), timeout=timeout)
        if not isinstance(call, MappedStream):
            raise TypeError("a watch stream must come through the client's ErrorMapping interceptor")
        return call.converted(Update.from_pb)
