"""The gRPC boundary: one table from our errors to status codes, and back.

Servers wrap handlers with :func:`handler`, which turns a
:class:`~clearance.errors.ClearanceError` into the status code of
:data:`STATUS_CODES` with its message, and any other exception into
INTERNAL without leaking its text. Clients call :func:`to_error` on a
:class:`grpc.RpcError` to get the matching error back.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from clearance.errors import (
    AuthenticationError,
    ClearanceError,
    ConflictError,
    InvalidArgumentError,
    MalformedError,
    NotFoundError,
    PermissionDeniedError,
    PolicyError,
    RateLimitedError,
    StorageError,
    TransportError,
    VerificationError,
    WorkflowError,
)

log = logging.getLogger("clearance.rpc")

STATUS_CODES: tuple[tuple[type[ClearanceError], grpc.StatusCode], ...] = (
    (AuthenticationError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (MalformedError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (ConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (WorkflowError, grpc.StatusCode.FAILED_PRECONDITION),
    (VerificationError, grpc.StatusCode.INVALID_ARGUMENT),
    (PolicyError, grpc.StatusCode.FAILED_PRECONDITION),
    (TransportError, grpc.StatusCode.UNAVAILABLE),
    (RateLimitedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StorageError, grpc.StatusCode.UNAVAILABLE),
)
"""First match wins: order goes from specific to general."""


def status_code(exc: ClearanceError) -> grpc.StatusCode:
    for kind, code in STATUS_CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


F = TypeVar("F", bound=Callable[..., Any])


def handler(method: F) -> F:
    """Wrap a servicer method: domain errors become status codes; nothing else leaks."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except ClearanceError as exc:
            context.abort(status_code(exc), str(exc))
        except Exception:
            log.exception("unexpected error in %s", method.__qualname__)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

    return wrapper  # type: ignore[return-value]


_FROM_CODE: dict[grpc.StatusCode, Callable[[str], ClearanceError]] = {
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.INVALID_ARGUMENT: lambda m: InvalidArgumentError(
        m.split(":", 1)[0], m.split(":", 1)[-1].strip()
    ),
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: WorkflowError,
    grpc.StatusCode.UNAVAILABLE: TransportError,
    grpc.StatusCode.DEADLINE_EXCEEDED: TransportError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimitedError,
}


def to_error(exc: grpc.RpcError, *, peer: str = "server") -> ClearanceError:
    """The :class:`ClearanceError` a client should raise for a failed call."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else None) or ""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return TransportError(f"cannot reach {peer}: {details or code.name.lower()}")
    make = _FROM_CODE.get(code)
    if make is None:
        return ClearanceError(f"{peer} failed: {code.name}: {details}")
    return make(details or code.name.lower())
