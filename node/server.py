"""The node's gRPC servers: the local API (loopback or a Unix socket) and the peer API.

**Local API** (``NodeService``): for the organization's own systems. It
listens on loopback TCP or ``unix:PATH`` only (enforced by
:mod:`node.config`), and every call must carry ``authorization: Bearer
<local token>``; the token (``DIR/local-token``, 0600) is compared in
constant time by :class:`LocalTokenInterceptor`, and anything else is
UNAUTHENTICATED before a handler runs. A Unix socket is made 0600 as well.

**Peer API** (``PeerService``): for other organizations' nodes. Callers
authenticate with their facility credential (see :mod:`node.peers`), so no
token; plaintext only on loopback, TLS otherwise (``DIR/tls``).

With ``listen = "127.0.0.1:0"`` the system picks a port; the address
actually bound is written to ``DIR/local-api.addr`` (``DIR/peer-api.addr``)
for the CLI to find.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from clearance.errors import InvalidArgumentError
from clearance.tls import TlsFiles
from clearance.v1 import node_pb2_grpc as rpc
from node.servicers import NodeServicer, PeerServicer

_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 80 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]


class LocalTokenInterceptor(grpc.ServerInterceptor):
    """Refuses every call whose ``authorization`` is not ``Bearer <local token>``."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        presented = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                presented = value.encode() if isinstance(value, str) else bytes(value)
        if hmac.compare_digest(presented, self._expected):
            return continuation(details)
        message = "missing local token" if not presented else "wrong local token"

        def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{message}: see DIR/local-token")

        return grpc.unary_unary_rpc_method_handler(refuse)


@dataclass
class RunningServer:
    server: grpc.Server
    address: str
    """The address actually bound (``HOST:PORT`` or ``unix:PATH``)."""

    def stop(self, grace: float) -> None:
        self.server.stop(grace).wait(grace + 1)


def _bind(server: grpc.Server, listen: str, credentials: grpc.ServerCredentials | None) -> str:
    port = server.add_secure_port(listen, credentials) if credentials else server.add_insecure_port(listen)
    if port == 0:
        raise InvalidArgumentError("listen", f"cannot listen on {listen} (in use?)")
    if listen.startswith("unix:"):
        return listen
    return f"{listen.rpartition(':')[0]}:{port}"


def start_local_api(
    servicer: NodeServicer, listen: str, token: str, *, max_workers: int = 32
) -> RunningServer:
    """Serve ``NodeService`` on ``listen`` (loopback or ``unix:PATH``), token required.

    Raises:
        InvalidArgumentError: the address cannot be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="local-api"),
        interceptors=[LocalTokenInterceptor(token)],
        options=_OPTIONS,
    )
    rpc.add_NodeServiceServicer_to_server(servicer, server)
    if listen.startswith("unix:"):
        path = listen[len("unix:") :]
        if os.path.exists(path):
            os.unlink(path)  # a socket left by a killed node
    address = _bind(server, listen, None)
    server.start()
    if listen.startswith("unix:"):
        os.chmod(listen[len("unix:") :], 0o600)
    return RunningServer(server, address)


def start_peer_api(
    servicer: PeerServicer, listen: str, *, tls: TlsFiles | None, max_workers: int = 16
) -> RunningServer:
    """Serve ``PeerService`` on ``listen``: TLS with ``tls``, plaintext when it is None (loopback only).

    Raises:
        InvalidArgumentError: the address cannot be bound.
        StorageError: the TLS material cannot be read.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="peer-api"), options=_OPTIONS
    )
    rpc.add_PeerServiceServicer_to_server(servicer, server)
    credentials = None
    if tls is not None:
        _ca, chain, key = tls.read()
        credentials = grpc.ssl_server_credentials([(key, chain)])
    address = _bind(server, listen, credentials)
    server.start()
    return RunningServer(server, address)
