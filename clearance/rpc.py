"""The gRPC boundary: one table from our errors to status codes and error details, and back.

Servers wrap handlers with :func:`handler`, which turns a
:class:`~clearance.errors.ClearanceError` into the status code of
:data:`ERROR_KINDS` with its message, plus a ``google.rpc.Status`` in the
trailers (gRPC's richer error model) holding

* an ``ErrorInfo`` in the domain :data:`DOMAIN` whose ``reason`` is our stable
  code: the :class:`~clearance.errors.Reason` of a verification refusal, the
  reason of a policy refusal, the :class:`~clearance.errors.DenialCode` of a
  separation-of-duties refusal, else the code of the error's class (the table
  below); its ``metadata`` holds ``error`` (the class code) and ``detail`` (the
  sentence for humans), and ``reason`` for a policy or duty refusal;
* a ``BadRequest`` naming the field of an
  :class:`~clearance.errors.InvalidArgumentError`.

Any other exception becomes INTERNAL without leaking its text. Clients call
:func:`to_error` on a :class:`grpc.RpcError` (the typed client does it once,
in its interceptor) to get our exact error back from those details, never
from the message text. A failure with no details of ours comes from the
channel (unreachable, TLS trust, deadline) or from a layer before the
handler, and is mapped by its status code alone.

=================  ===================  ===================================
class code         status code          error class
=================  ===================  ===================================
UNAUTHENTICATED    UNAUTHENTICATED      AuthenticationError
PERMISSION_DENIED  PERMISSION_DENIED    PermissionDeniedError
INVALID_ARGUMENT   INVALID_ARGUMENT     InvalidArgumentError (+ BadRequest)
MALFORMED          INVALID_ARGUMENT     MalformedError (reason: a Reason)
NOT_FOUND          NOT_FOUND            NotFoundError
CONFLICT           ALREADY_EXISTS       ConflictError
OUT_OF_ORDER       FAILED_PRECONDITION  WorkflowError
VERIFICATION       INVALID_ARGUMENT     VerificationError (reason: a Reason)
POLICY             FAILED_PRECONDITION  PolicyError (reason: its own)
PEER_UNREACHABLE   UNAVAILABLE          TransportError (the server's peer)
RATE_LIMITED       RESOURCE_EXHAUSTED   RateLimitedError
STORAGE            UNAVAILABLE          StorageError
=================  ===================  ===================================
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from clearance.errors import (
    AuthenticationError,
    ClearanceError,
    ConflictError,
    DenialCode,
    InvalidArgumentError,
    MalformedError,
    NotFoundError,
    PermissionDeniedError,
    PolicyError,
    RateLimitedError,
    Reason,
    StorageError,
    TransportError,
    VerificationError,
    WorkflowError,
)

log = logging.getLogger("clearance.rpc")

DOMAIN = "clearance.example"
"""The ``ErrorInfo.domain`` of our errors: a reason is ours only in this domain."""

ERROR_KINDS: tuple[tuple[type[ClearanceError], grpc.StatusCode, str], ...] = (
    (AuthenticationError, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    (MalformedError, grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED"),
    (NotFoundError, grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    (ConflictError, grpc.StatusCode.ALREADY_EXISTS, "CONFLICT"),
    (WorkflowError, grpc.StatusCode.FAILED_PRECONDITION, "OUT_OF_ORDER"),
    (VerificationError, grpc.StatusCode.INVALID_ARGUMENT, "VERIFICATION"),
    (PolicyError, grpc.StatusCode.FAILED_PRECONDITION, "POLICY"),
    (TransportError, grpc.StatusCode.UNAVAILABLE, "PEER_UNREACHABLE"),
    (RateLimitedError, grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED"),
    (StorageError, grpc.StatusCode.UNAVAILABLE, "STORAGE"),
)
"""Error class, status code, class code. First match wins: order goes from specific to general."""

STATUS_CODES: tuple[tuple[type[ClearanceError], grpc.StatusCode], ...] = tuple(
    (kind, code) for kind, code, _ in ERROR_KINDS
)

_BY_CLASS_CODE: dict[str, type[ClearanceError]] = {name: kind for kind, _, name in ERROR_KINDS}
_REASON = re.compile(r"[A-Z][A-Z0-9_]{0,61}[A-Z0-9]")
"""The form google.rpc asks of ``ErrorInfo.reason`` (UPPER_SNAKE_CASE, at most 63 characters)."""


def status_code(exc: ClearanceError) -> grpc.StatusCode:
    """The status code ``exc`` is sent with."""
    return _kind(exc)[0]


def _kind(exc: ClearanceError) -> tuple[grpc.StatusCode, str]:
    for kind, code, name in ERROR_KINDS:
        if isinstance(exc, kind):
            return code, name
    return grpc.StatusCode.INTERNAL, "INTERNAL"


def error_status(exc: ClearanceError) -> status_pb2.Status:
    """The ``google.rpc.Status`` that carries ``exc``: its code, message and details."""
    code, class_code = _kind(exc)
    reason = class_code
    metadata = {"error": class_code}
    if isinstance(exc, VerificationError):
        reason = exc.reason.value.upper()
        metadata["detail"] = exc.detail
    elif isinstance(exc, PolicyError):
        reason = exc.reason.upper() if _REASON.fullmatch(exc.reason.upper()) else class_code
        metadata.update(reason=exc.reason, detail=exc.detail)
    elif isinstance(exc, PermissionDeniedError) and exc.code is not None:
        reason = exc.code.value.upper()
        metadata.update(reason=exc.code.value, detail=exc.detail)
    elif isinstance(exc, InvalidArgumentError):
        metadata["detail"] = exc.detail
    status = status_pb2.Status(code=code.value[0], message=str(exc))
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))
    if isinstance(exc, InvalidArgumentError):
        request = error_details_pb2.BadRequest()
        request.field_violations.add(field=exc.field, description=exc.detail)
        status.details.add().Pack(request)
    return status


def grpc_status_of(exc: ClearanceError) -> grpc.Status:
    """``exc`` as the status a server ends a call with: code, message, and the details as trailing metadata."""
    status: grpc.Status = rpc_status.to_status(error_status(exc))
    return status


def abort(context: grpc.ServicerContext, exc: ClearanceError) -> NoReturn:
    """End the call with ``exc``: its status code, message and error details.

    Raises:
        Exception: always (gRPC's own, which ends the call).
    """
    context.abort_with_status(grpc_status_of(exc))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


F = TypeVar("F", bound=Callable[..., Any])


def handler(method: F) -> F:
    """Wrap a servicer method: domain errors become status codes with details; nothing else leaks."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except ClearanceError as exc:
            abort(context, exc)
        except Exception:
            log.exception("unexpected error in %s", method.__qualname__)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

    return wrapper  # type: ignore[return-value]


# -- the client side ---------------------------------------------------------------------

_FROM_CODE: dict[grpc.StatusCode, Callable[[str], ClearanceError]] = {
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.INVALID_ARGUMENT: lambda message: InvalidArgumentError("", message),
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: WorkflowError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimitedError,
}


def to_error(exc: grpc.RpcError, *, peer: str = "server") -> ClearanceError:
    """The :class:`ClearanceError` a client raises for a failed call.

    An error the server sent with our details comes back as the exact type it
    raised (reason, field and detail included). Without them the status code
    decides: UNAVAILABLE and DEADLINE_EXCEEDED, which the channel itself
    reports when ``peer`` cannot be reached (refused, TLS trust failure, no
    answer in time), and CANCELLED become :class:`TransportError`.
    """
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = (exc.details() if isinstance(exc, grpc.Call) else None) or ""
    rebuilt = _from_details(exc, message) if isinstance(exc, grpc.Call) else None
    if rebuilt is not None:
        return rebuilt
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return TransportError(f"cannot reach {peer}: {message or code.name.lower()}")
    if code is grpc.StatusCode.CANCELLED:
        return TransportError(f"call to {peer} cancelled: {message or 'cancelled'}")
    make = _FROM_CODE.get(code)
    if make is None:
        return ClearanceError(f"{peer} failed: {code.name}: {message}")
    return make(message or code.name.lower())


def _from_details(call: grpc.Call, message: str) -> ClearanceError | None:
    """Our error rebuilt from the ``google.rpc.Status`` in ``call``'s trailers; None without one."""
    try:
        status = rpc_status.from_call(call)
    except ValueError:  # a status that contradicts the call's own: trust neither
        return None
    if status is None or status.code == code_pb2.OK:
        return None
    info: error_details_pb2.ErrorInfo | None = None
    field: str | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            candidate = error_details_pb2.ErrorInfo()
            detail.Unpack(candidate)
            if candidate.domain == DOMAIN:
                info = candidate
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            if request.field_violations:
                field = request.field_violations[0].field
    if info is None:
        return None
    kind = _BY_CLASS_CODE.get(info.metadata.get("error", ""))
    detail_text = info.metadata.get("detail", message)
    if kind is None:
        return None
    if issubclass(kind, VerificationError):
        try:
            reason = Reason(info.reason.lower())
        except ValueError:
            return None  # a reason newer than this client: the status code decides
        if kind is MalformedError:
            return MalformedError(detail_text, reason)
        return VerificationError(reason, detail_text)
    if kind is PolicyError:
        return PolicyError(info.metadata.get("reason", info.reason.lower()), detail_text)
    if kind is InvalidArgumentError:
        return InvalidArgumentError(field or "", detail_text)
    if kind is PermissionDeniedError:
        code = info.metadata.get("reason", "")
        # A code newer than this client still refuses: it only goes without its code.
        if code in set(DenialCode):
            return PermissionDeniedError(detail_text, DenialCode(code))
        return PermissionDeniedError(message)
    return kind(message)
