"""The one place a client turns a failed call into our error: a gRPC client interceptor.

Every channel the typed client uses passes through :class:`ErrorMapping`, so
no caller catches :class:`grpc.RpcError`: a unary call raises the
:class:`~clearance.errors.ClearanceError` that :func:`clearance.rpc.to_error`
rebuilds from the server's error details, and a server stream raises it while
it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import grpc

from clearance.rpc import to_error

T = TypeVar("T")


class ErrorMapping(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Raise our errors, naming ``peer`` (e.g. ``registry 127.0.0.1:7443``) in transport failures."""

    def __init__(self, peer: str) -> None:
        self.peer = peer

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        outcome = continuation(details, request)
        failure = outcome.exception()
        if isinstance(failure, grpc.RpcError):
            raise to_error(failure, peer=self.peer) from None
        return outcome

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return MappedStream(continuation(details, request), self.peer)


class MappedStream(Generic[T]):
    """A server stream whose failure is raised as our error; :meth:`cancel` ends it from any thread."""

    def __init__(self, call: Any, peer: str, convert: Callable[[Any], T] | None = None) -> None:
        self._call = call
        self._peer = peer
        self._convert = convert

    def converted(self, convert: Callable[[Any], T]) -> MappedStream[T]:
        """The same stream, each message converted by ``convert``."""
        return MappedStream(self._call, self._peer, convert)

    def __iter__(self) -> Iterator[T]:
        try:
            for message in self._call:
                yield self._convert(message) if self._convert is not None else message
        except grpc.RpcError as exc:
            raise to_error(exc, peer=self._peer) from None

    def cancel(self) -> None:
        """End the stream: a reader blocked in it gets a :class:`~clearance.errors.TransportError`."""
        self._call.cancel()
