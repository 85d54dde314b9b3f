"""Exit codes of the ``clearance`` command and the one-line message for each error.

=====  ======================================================================
code   meaning
=====  ======================================================================
0      success (for ``inspect``/``verify``: the artifact verified)
1      the operation failed (storage, unexpected errors)
2      usage error: a wrong option or argument (click's own code)
3      refused: an artifact failed verification, or a decision was "deny"
4      not allowed: unauthenticated or permission denied
5      unavailable: a registry or node could not be reached, or asked us to slow down
6      not found, conflict, or a workflow step out of order
=====  ======================================================================
"""

from __future__ import annotations

from clearance.errors import (
    AuthorizationError,
    ClearanceError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PolicyError,
    RateLimitedError,
    TransportError,
    VerificationError,
    WorkflowError,
)

OK = 0
FAILURE = 1
USAGE = 2
REFUSED = 3
NOT_ALLOWED = 4
UNAVAILABLE = 5
PRECONDITION = 6


def describe(exc: BaseException) -> tuple[int, str]:
    """The exit code and one-line message for ``exc``."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, VerificationError | PolicyError):
        return REFUSED, message
    if isinstance(exc, AuthorizationError):
        return NOT_ALLOWED, message
    if isinstance(exc, TransportError | RateLimitedError):
        return UNAVAILABLE, message
    if isinstance(exc, InvalidArgumentError):
        return USAGE, message
    if isinstance(exc, NotFoundError | ConflictError | WorkflowError):
        return PRECONDITION, message
    if isinstance(exc, ClearanceError):
        return FAILURE, message
    if isinstance(exc, OSError):
        return FAILURE, f"{exc.strerror or message}" + (f": {exc.filename}" if exc.filename else "")
    return FAILURE, f"unexpected {type(exc).__name__}: {message} (run with --debug for details)"
