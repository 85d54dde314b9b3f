"""Authentication and the role check for every registry call, in one interceptor.

For a method in :data:`~registry.policy.PUBLIC_METHODS` nothing is asked.
Otherwise the ``authorization: Bearer`` token must verify against a staff or
node key the registry knows and that is not disabled (else
UNAUTHENTICATED), and the caller's role must be allowed for the method by
:data:`~registry.policy.PERMISSIONS` (else PERMISSION_DENIED). Methods not in
the table are denied to everyone. The handler finds the caller in
:data:`current_caller`.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from sqlalchemy import select

from clearance.access import parse_access_token, verify_access_token
from clearance.errors import AuthenticationError, ClearanceError, PermissionDeniedError
from clearance.keys import PublicKey
from clearance.rpc import status_code
from registry.context import RegistryContext
from registry.policy import PUBLIC_METHODS, Caller, Role, allowed
from registry.store.models import Node, Staff

current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("current_caller", default=None)

_KEY_CACHE_SECONDS = 5.0


def caller() -> Caller:
    """The authenticated caller of the current call (set by the interceptor).

    Raises:
        AuthenticationError: called outside an authenticated call.
    """
    value = current_caller.get()
    if value is None:
        raise AuthenticationError("this call needs an authenticated caller")
    return value


class Authenticator:
    """Turns a bearer token into a :class:`Caller`, with short caches for keys and tokens."""

    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx
        self._keys: dict[str, tuple[float, tuple[PublicKey, Caller] | None]] = {}
        self._tokens: dict[str, tuple[int, Caller]] = {}
        self._lock = threading.Lock()

    def authenticate(self, metadata: tuple[Any, ...]) -> Caller:
        token = None
        for name, value in metadata:  # grpc's _Metadatum is a (key, value) named tuple
            if name == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                token = value[7:].strip()
        if not token:
            raise AuthenticationError("this call needs 'authorization: Bearer <token>'")
        now = self._ctx.now()
        cached = self._tokens.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        jws = parse_access_token(token)
        entry = self._principal(jws.kid or "")
        if entry is None:
            raise AuthenticationError("access token is signed by a key this registry does not know")
        key, who = entry
        claims = verify_access_token(jws, key, audience=self._ctx.config.issuer, now=now)
        if claims.principal != who.principal:
            raise AuthenticationError("access token names another principal than its key")
        with self._lock:
            if len(self._tokens) > 10_000:
                self._tokens = {t: c for t, c in self._tokens.items() if c[0] > now}
            # Cache briefly: a disabled account stops working within seconds.
            self._tokens[token] = (min(claims.expires_at, now + int(_KEY_CACHE_SECONDS)), who)
        return who

    def _principal(self, kid: str) -> tuple[PublicKey, Caller] | None:
        wall = time.monotonic()
        cached = self._keys.get(kid)
        if cached is not None and wall - cached[0] < _KEY_CACHE_SECONDS:
            return cached[1]
        result: tuple[PublicKey, Caller] | None = None
        with self._ctx.db.transaction() as session:
            staff = session.execute(select(Staff).where(Staff.key_thumbprint == kid)).scalar_one_or_none()
            if staff is not None and not staff.disabled:
                result = (
                    PublicKey.from_jwk(json.loads(staff.public_jwk)),
                    Caller(staff.id, Role(staff.role), staff.organization_id),
                )
            if staff is None:
                node = session.execute(select(Node).where(Node.key_thumbprint == kid)).scalar_one_or_none()
                if node is not None and not node.disabled:
                    result = (
                        PublicKey.from_jwk(json.loads(node.public_jwk)),
                        Caller(node.id, Role.NODE, node.organization_id),
                    )
        with self._lock:
            self._keys[kid] = (wall, result)
        return result

    def forget(self) -> None:
        """Drop caches (after disabling an account in this process)."""
        with self._lock:
            self._keys.clear()
            self._tokens.clear()


def _wrap(
    behavior: Callable[..., Any], check: Callable[[grpc.ServicerContext], Caller | None]
) -> Callable[..., Any]:
    def wrapped(request_or_iterator: Any, context: grpc.ServicerContext) -> Any:
        try:
            who = check(context)
        except ClearanceError as exc:
            context.abort(status_code(exc), str(exc))
        token = current_caller.set(who)
        try:
            return behavior(request_or_iterator, context)
        finally:
            current_caller.reset(token)

    return wrapped


class AuthInterceptor(grpc.ServerInterceptor):
    """Authenticate, then check the role against the permission table; deny by default."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if method in PUBLIC_METHODS:
            return handler

        def check(context: grpc.ServicerContext) -> Caller:
            who = self._authenticator.authenticate(tuple(context.invocation_metadata()))
            if not allowed(method, who):
                raise PermissionDeniedError(f"{who.role.value} may not call {method.rsplit('/', 1)[-1]}")
            return who

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap(handler.unary_unary, check),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap(handler.unary_stream, check),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # No streaming-request methods exist in v1: anything else is refused.
        return grpc.unary_unary_rpc_method_handler(
            lambda _request, context: context.abort(grpc.StatusCode.PERMISSION_DENIED, "method not allowed")
        )
