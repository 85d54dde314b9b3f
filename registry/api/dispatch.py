"""Every call's way in: authenticate, admit, read the request with a deadline, then run the handler.

The registry serves on a ``grpc.aio`` server. Its :class:`ServingInterceptor`
sees each call when only its headers have arrived, and in this order:

1. **authenticates** the bearer token, if any (see :mod:`registry.api.auth`),
   and checks the role against :data:`~registry.policy.PERMISSIONS`; a call
   that needs a credential and has none is refused here, its body never read;
2. **admits** it into its class's budget (:mod:`registry.api.admission`) or
   refuses it with RESOURCE_EXHAUSTED;
3. **reads the request** on the event loop, as bytes, within a deadline
   (short for anonymous callers) and a size limit per method, so a caller that
   sends headers and no body holds no worker thread, only a little memory,
   and not for long;
4. checks, for an authenticated caller, that the account is still enabled,
   **then parses** the request, and runs the servicer's (synchronous) handler
   on a worker thread; ``Watch`` and the health service are coroutines and
   need no thread at all.

Handlers see the caller in :data:`~registry.api.auth.current_caller` and a
:class:`ThreadContext` whose ``abort`` ends the call as gRPC's own does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent import futures
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from clearance.errors import (
    AuthenticationError,
    ClearanceError,
    InvalidArgumentError,
    PermissionDeniedError,
    RateLimitedError,
)
from clearance.rpc import grpc_status_of, status_code
from registry.api.admission import Admission, ServingLimits, Slot
from registry.api.auth import Authenticator, bearer_token, current_caller
from registry.policy import PUBLIC_METHODS, Caller, allowed

log = logging.getLogger("clearance.registry.dispatch")

SUBSCRIPTIONS = frozenset({"/clearance.v1.PublicationService/Watch"})
"""Public methods where an enrolled node's credential counts: it is admitted among subscribers."""

CallObserver = Callable[[str, str, float], None]
"""Told (method, status code name, seconds) when a unary call ends (metrics)."""


class _AbortedError(BaseException):
    """Raised in a worker thread by :meth:`ThreadContext.abort` (a BaseException, as gRPC's own is
    not caught by a handler's ``except Exception``)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata

    @classmethod
    def of(cls, exc: ClearanceError) -> _AbortedError:
        """``exc`` with its code, message and error details."""
        status = grpc_status_of(exc)
        return cls(status.code, status.details, status.trailing_metadata)


class _RefusedError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class ThreadContext(grpc.ServicerContext):
    """The context a synchronous handler gets on its worker thread (wraps the call's aio context)."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._context = context
        self._callbacks: list[Callable[[], None]] = []

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise _AbortedError(code, details)

    def abort_with_status(self, status: grpc.Status) -> NoReturn:
        raise _AbortedError(status.code, status.details, status.trailing_metadata)

    def is_active(self) -> bool:
        return not self._context.done()

    def time_remaining(self) -> Any:  # seconds, or None without a deadline (as gRPC's own)
        return self._context.time_remaining()

    def cancel(self) -> NoReturn:
        raise _AbortedError(grpc.StatusCode.CANCELLED, "cancelled by the server")

    def add_callback(self, callback: Callable[[], None]) -> bool:
        self._callbacks.append(callback)
        return True

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def peer(self) -> str:
        return self._context.peer()

    def peer_identities(self) -> Any:
        return self._context.peer_identities()

    def peer_identity_key(self) -> str | None:
        return self._context.peer_identity_key()

    def auth_context(self) -> Any:
        return self._context.auth_context()

    def set_compression(self, compression: grpc.Compression) -> None:
        self._context.set_compression(compression)

    def send_initial_metadata(self, initial_metadata: Any) -> None:
        raise NotImplementedError("registry handlers send no initial metadata")

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        self._context.set_trailing_metadata(trailing_metadata)

    def trailing_metadata(self) -> Any:
        return self._context.trailing_metadata()

    def code(self) -> Any:
        return self._context.code()

    def details(self) -> Any:
        return self._context.details()

    def set_code(self, code: grpc.StatusCode) -> None:
        self._context.set_code(code)

    def set_details(self, details: str) -> None:
        self._context.set_details(details)

    def disable_next_message_compression(self) -> None:
        self._context.disable_next_message_compression()

    def run_callbacks(self) -> None:
        for callback in self._callbacks:
            callback()


def _parse(deserializer: Callable[[bytes], Any] | None, raw: bytes) -> Any:
    """The request message.

    Raises:
        InvalidArgumentError: the bytes are not a message of this method.
    """
    if deserializer is None:
        return raw
    try:
        return deserializer(raw)
    except (DecodeError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError("request", "is not a valid message for this method") from exc


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    details: str,
    trailing_metadata: Any = (),
) -> NoReturn:
    await context.abort(code, details, trailing_metadata)
    raise AssertionError("abort returned")  # pragma: no cover - grpc's abort always raises


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # a read ended by the call's end: nothing to report


class ServingInterceptor(grpc.aio.ServerInterceptor):
    """Authentication, admission, the request deadline and size, then the handler (see the module)."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        limits: ServingLimits,
        executor: futures.ThreadPoolExecutor,
        observe: CallObserver | None = None,
    ) -> None:
        self._auth = authenticator
        self._limits = limits
        self.admission = Admission(limits)
        self._executor = executor
        self._observe = observe

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        try:
            who = await self._identify(method, details.invocation_metadata)
        except ClearanceError as exc:
            return _refusal(_AbortedError.of(exc))
        served: grpc.RpcMethodHandler[Any, Any]
        if handler.request_streaming:
            served = self._streaming_requests(handler, who)
        elif handler.response_streaming:
            served = self._server_stream(handler, method, who)
        else:
            served = self._unary(handler, method, who)
        return served

    async def _identify(self, method: str, metadata: Sequence[tuple[str, Any]] | None) -> Caller | None:
        token = bearer_token(metadata)
        public = method in PUBLIC_METHODS
        if token is None:
            if public:
                return None
            raise AuthenticationError("this call needs 'authorization: Bearer <token>'")
        if public:
            if method not in SUBSCRIPTIONS:
                return None  # served alike to all: the credential would change nothing
            try:  # a subscriber's credential earns it a reserved place (see admission)
                who = await self._auth.authenticate(token)
                await self._auth.check_enabled(who)
            except RateLimitedError:
                raise  # not checked yet: come back later (a node's place is not taken by a stranger's)
            except ClearanceError:  # a public method is served anyway, as to anyone
                return None
            return who
        who = await self._auth.authenticate(token)
        if not allowed(method, who):
            await self._auth.check_enabled(who)  # a disabled account is told so, not what its role lacks
            raise PermissionDeniedError(f"{who.role.value} may not call {method.rsplit('/', 1)[-1]}")
        return who

    async def _read(
        self, context: grpc.aio.ServicerContext[Any, Any], who: Caller | None, method: str
    ) -> bytes:
        """The request bytes, within the caller's deadline and the method's size limit.

        Raises:
            _RefusedError: too slow, too large, or no request at all.
        """
        seconds = (
            self._limits.anonymous_body_seconds if who is None else self._limits.authenticated_body_seconds
        )
        reading = asyncio.ensure_future(context.read())
        finished, _pending = await asyncio.wait({reading}, timeout=seconds)
        if not finished:
            reading.add_done_callback(_quiet)
            raise _RefusedError(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"the request did not arrive within {seconds:g} seconds"
            )
        raw = reading.result()
        if raw is grpc.aio.EOF or not isinstance(raw, bytes):
            raise _RefusedError(grpc.StatusCode.INVALID_ARGUMENT, "the call carried no request")
        limit = self._limits.request_limit(method)
        if len(raw) > limit:
            raise _RefusedError(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"the request is larger than {limit} bytes"
            )
        return raw

    def _run_sync(
        self,
        behavior: Any,
        deserializer: Callable[[bytes], Any] | None,
        raw: bytes,
        who: Caller | None,
        context: ThreadContext,
    ) -> Any:
        """On a worker thread: the account check, the parse, the handler."""
        token = current_caller.set(who)
        try:
            if who is not None:
                self._auth.require_enabled(who)
            return behavior(_parse(deserializer, raw), context)
        except ClearanceError as exc:
            raise _AbortedError.of(exc) from None
        finally:
            current_caller.reset(token)

    def _unary(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str, who: Caller | None
    ) -> grpc.RpcMethodHandler[Any, Any]:
        behavior: Any = handler.unary_unary
        deserializer = handler.request_deserializer
        is_async = inspect.iscoroutinefunction(behavior)
        name = method.rsplit("/", 1)[-1]

        async def serve(_requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            code = "OK"
            slot: Slot | None = None
            try:
                slot = self.admission.call(who)
                raw = await self._read(context, who, method)
                if is_async:  # health: public, no thread needed
                    return await behavior(_parse(deserializer, raw), context)
                thread_context = ThreadContext(context)
                response = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._run_sync, behavior, deserializer, raw, who, thread_context
                )
                thread_context.run_callbacks()
                return response
            except ClearanceError as exc:
                code = status_code(exc).name
                aborted = _AbortedError.of(exc)
                await _abort(context, aborted.code, aborted.details, aborted.trailing_metadata)
            except _AbortedError as exc:
                code = exc.code.name
                await _abort(context, exc.code, exc.details, exc.trailing_metadata)
            except _RefusedError as exc:
                code = exc.code.name
                await _abort(context, exc.code, exc.details)
            except Exception:
                if context.done():  # the client went away or the call was aborted
                    code = "CANCELLED"
                    raise
                code = "INTERNAL"
                log.exception("unexpected error in %s", method)
                await _abort(context, grpc.StatusCode.INTERNAL, "internal error; see the server log")
            finally:
                if slot is not None:
                    slot.release()
                if self._observe is not None:
                    self._observe(name, code, time.perf_counter() - started)

        return grpc.stream_unary_rpc_method_handler(serve, None, handler.response_serializer)

    def _server_stream(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str, who: Caller | None
    ) -> grpc.RpcMethodHandler[Any, Any]:
        behavior: Any = handler.unary_stream
        deserializer = handler.request_deserializer
        if not (inspect.isasyncgenfunction(behavior) or inspect.iscoroutinefunction(behavior)):
            # A synchronous stream would hold a worker thread for its lifetime: none is served.
            return _refusal(_AbortedError(grpc.StatusCode.UNIMPLEMENTED, "this stream is not served"))

        async def serve(_requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            slot: Slot | None = None
            try:
                slot = self.admission.stream(who)
                slot.end = lambda: _end_early(context)
                request = _parse(deserializer, await self._read(context, who, method))
                token = current_caller.set(who)
                try:
                    if inspect.isasyncgenfunction(behavior):
                        async for response in behavior(request, context):
                            await context.write(response)
                    else:
                        await behavior(request, context)
                finally:
                    current_caller.reset(token)
            except ClearanceError as exc:
                aborted = _AbortedError.of(exc)
                await _abort(context, aborted.code, aborted.details, aborted.trailing_metadata)
            except _RefusedError as exc:
                await _abort(context, exc.code, exc.details)
            finally:
                if slot is not None:
                    slot.release()

        return grpc.stream_stream_rpc_method_handler(serve, None, handler.response_serializer)

    def _streaming_requests(
        self, handler: grpc.RpcMethodHandler[Any, Any], who: Caller | None
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Client-streaming methods (server reflection only): admitted as streams."""
        stream_stream: Any = handler.stream_stream
        if stream_stream is None or not (
            inspect.isasyncgenfunction(stream_stream) or inspect.iscoroutinefunction(stream_stream)
        ):
            return _refusal(_AbortedError(grpc.StatusCode.UNIMPLEMENTED, "this method is not served"))

        async def serve(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            try:
                slot = self.admission.stream(who)
            except ClearanceError as exc:
                aborted = _AbortedError.of(exc)
                await _abort(context, aborted.code, aborted.details, aborted.trailing_metadata)
            slot.end = lambda: _end_early(context)
            try:
                if inspect.isasyncgenfunction(stream_stream):
                    async for response in stream_stream(requests, context):
                        await context.write(response)
                else:
                    await stream_stream(requests, context)
            finally:
                slot.release()

        return grpc.stream_stream_rpc_method_handler(
            serve, handler.request_deserializer, handler.response_serializer
        )


def _end_early(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """End a stream from outside its task (its principal opened a newer one)."""

    async def end() -> None:
        try:
            await context.abort(grpc.StatusCode.ABORTED, "replaced by a newer stream of the same subscriber")
        except Exception:  # noqa: BLE001 - abort raises by design; the call is over either way
            return

    task = asyncio.ensure_future(end())
    task.add_done_callback(_quiet)


def _refusal(refusal: _AbortedError) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler that ends the call with ``refusal`` without reading anything of it."""

    async def refuse(_requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(refusal.code, refusal.details, refusal.trailing_metadata)

    return grpc.stream_unary_rpc_method_handler(refuse)
