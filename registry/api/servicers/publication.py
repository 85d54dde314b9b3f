"""The publication service: trust bundles, status lists, keys, and the watch stream."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from clearance.errors import ClearanceError, InvalidArgumentError
from clearance.keys import jwks
from clearance.rpc import handler, status_code
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from registry.api.servicers.base import ServicerBase
from registry.context import RegistryContext
from registry.publication import publisher
from registry.workflows.federation import root_jwk_json


class PublicationServicer(ServicerBase, rpc.PublicationServiceServicer):
    def __init__(
        self, ctx: RegistryContext, hub: publisher.PublicationHub, *, heartbeat: float = 15.0
    ) -> None:
        super().__init__(ctx)
        self.hub = hub
        self.heartbeat = heartbeat

    @handler
    def GetTrustBundle(
        self, request: pb.GetTrustBundleRequest, context: grpc.ServicerContext
    ) -> pb.GetTrustBundleResponse:
        return pb.GetTrustBundleResponse(bundle=publisher.bundle_token(self.ctx, request.jurisdiction))

    @handler
    def GetStatusList(
        self, request: pb.GetStatusListRequest, context: grpc.ServicerContext
    ) -> pb.GetStatusListResponse:
        if not request.uri:
            raise InvalidArgumentError("uri", "is required")
        return pb.GetStatusListResponse(token=publisher.status_list_token(self.ctx, request.uri))

    @handler
    def GetJwks(self, request: pb.GetJwksRequest, context: grpc.ServicerContext) -> pb.GetJwksResponse:
        keys = [k.public for k in self.ctx.keys.issuing.values()]
        return pb.GetJwksResponse(jwks_json=json.dumps(jwks(keys)))

    @handler
    def GetRootHistory(
        self, request: pb.GetRootHistoryRequest, context: grpc.ServicerContext
    ) -> pb.GetRootHistoryResponse:
        root = self.ctx.keys.root
        root_jwk = json.dumps(root.public.jwk) if root else root_jwk_json(self.ctx)
        return pb.GetRootHistoryResponse(rotations=publisher.root_history(self.ctx), root_jwk=root_jwk)

    async def Watch(
        self, request: pb.WatchRequest, context: grpc.aio.ServicerContext[pb.WatchRequest, pb.WatchResponse]
    ) -> AsyncIterator[pb.WatchResponse]:
        """Push what the subscriber lacks, then every change; a coroutine, so a stream holds no thread."""
        held = publisher.Held(
            bundle_version=max(0, request.bundle_version),
            lists={s.uri: s.sequence for s in request.status_lists},
            foreign={f"bundle:{j}": v for j, v in request.foreign_bundle_versions.items()},
        )
        try:
            async for kind, payload in self.hub.stream(held, done=context.done, heartbeat=self.heartbeat):
                if kind == "heartbeat":
                    yield pb.WatchResponse(heartbeat=Timestamp(seconds=int(payload)))
                else:
                    yield _update(kind, str(payload))
        except ClearanceError as exc:  # a stream ends with a status, never a traceback
            await context.abort(status_code(exc), str(exc))


@functools.lru_cache(maxsize=4096)
def _update(kind: str, token: str) -> pb.WatchResponse:
    """One push message, built once for every stream that sends it (it is never changed after)."""
    message = pb.WatchResponse()
    setattr(message, kind, token)
    return message
