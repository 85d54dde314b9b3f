"""Client channels to a registry or a node: TLS by default, bearer tokens on every call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

_OPTIONS: list[tuple[str, str | int]] = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.enable_retries", 1),
]


class _BearerInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to every call (works on plaintext loopback too)."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def _with_token(self, details: Any) -> Any:
        metadata = list(details.metadata or [])
        metadata.append(("authorization", f"Bearer {self._token()}"))
        return _Details(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)


class _Details(grpc.ClientCallDetails):
    def __init__(
        self, method: str, timeout: float | None, metadata: Any, credentials: Any, wait_for_ready: Any
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready


def open_channel(
    endpoint: str,
    *,
    ca_pem: bytes | None = None,
    insecure: bool = False,
    token: Callable[[], str] | None = None,
    server_name: str | None = None,
    own_connection: bool = False,
) -> grpc.Channel:
    """A channel to ``endpoint`` (HOST:PORT or unix:PATH).

    TLS verifies the server against ``ca_pem`` (or the system roots when None);
    ``insecure`` speaks plaintext, for loopback development and Unix sockets.
    ``own_connection`` keeps gRPC from sharing the TCP connection with other
    channels to the same target (so load spreads over replica processes).
    """
    options: list[tuple[str, str | int]] = list(_OPTIONS)
    if own_connection:
        options.append(("grpc.use_local_subchannel_pool", 1))
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    if insecure:
        channel = grpc.insecure_channel(endpoint, options=options)
    else:
        channel = grpc.secure_channel(
            endpoint, grpc.ssl_channel_credentials(root_certificates=ca_pem), options=options
        )
    if token is not None:
        channel = grpc.intercept_channel(channel, _BearerInterceptor(token))
    return channel
