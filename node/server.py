"""The node's gRPC servers: the local API (loopback or a Unix socket) and the peer API.

**Local API** (``NodeService``): for the organization's own systems. It
listens on loopback TCP or ``unix:PATH`` only (enforced by
:mod:`node.config`), and every call must carry ``authorization: Bearer
<local token>``; the token (``DIR/local-token``, 0600) is compared in
constant time by :class:`LocalTokenInterceptor`, and anything else is
UNAUTHENTICATED from the call's headers, before its request is read. A Unix
socket is made 0600 as well.

**Peer API** (``PeerService``): for other organizations' nodes. Callers
authenticate with their facility credential (see :mod:`node.peers`), so no
token; plaintext only on loopback, TLS otherwise (``DIR/tls``). Every call is
anonymous until then, and limited per caller (:mod:`node.ratelimit`).

**Admission before a worker is spent.** Both servers run on ``grpc.aio``: a
call's request is received on the event loop, never on a worker thread.
Each method is served by one coroutine (:func:`_serve`) that, in order:

1. refuses the call if its caller is over its rate or has too many calls in
   flight (peer API; :class:`~node.ratelimit.CallerLimiter`), from the
   call's headers alone;
2. receives exactly one request message within
   :attr:`ServiceLimits.request_timeout` seconds of the call's start (a caller
   that sends headers and no body is cut off, DEADLINE_EXCEEDED);
3. only then hands the complete request to a worker thread (the servicer
   method, :mod:`node.servicers`).

On top, each server admits at most :attr:`ServiceLimits.max_calls` calls at
once (beyond: RESOURCE_EXHAUSTED), and gRPC refuses a request larger than
:attr:`ServiceLimits.max_request_bytes` from its length prefix, before
reading it (RESOURCE_EXHAUSTED); HTTP/2 flow control stays at its initial
64 KiB window (no bandwidth-delay probing), so no more than that is ever
buffered for a refused message. :data:`LOCAL_LIMITS` and :data:`PEER_LIMITS`
hold the values; ``docs/security.md`` says why.

With ``listen = "127.0.0.1:0"`` the system picks a port; the address
actually bound is written to ``DIR/local-api.addr`` (``DIR/peer-api.addr``)
for the CLI to find.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.protobuf import message_factory
from google.protobuf.message import Message

from clearance.errors import ClearanceError, InvalidArgumentError, RateLimitedError
from clearance.rpc import status_code
from clearance.tls import TlsFiles
from clearance.v1 import node_pb2 as pb
from node.ratelimit import Caller, CallerLimiter
from node.servicers import NodeServicer, PeerServicer

log = logging.getLogger("clearance.node.server")

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class ServiceLimits:
    """What one server admits; see ``docs/security.md`` for the reasons behind each value."""

    max_request_bytes: int
    """The largest request message of any method; gRPC refuses a larger one before reading it."""
    request_timeout: float
    """Seconds from a call's start until its whole request must have arrived."""
    max_calls: int
    """Calls admitted at once (waiting for their request, queued or worked on); beyond: refused."""
    workers: int
    """Threads that run the servicer methods on complete requests."""
    method_bytes: Mapping[str, int] = field(default_factory=dict)
    """Tighter limits for some methods, checked as soon as their request is received."""
    max_response_bytes: int = 16 * MIB

    def __post_init__(self) -> None:
        if min(self.max_request_bytes, self.max_calls, self.workers) < 1 or self.request_timeout <= 0:
            raise ValueError("service limits must be positive")


LOCAL_LIMITS = ServiceLimits(
    max_request_bytes=16 * MIB,  # a Verify batch: 1000 presentations of a few KiB, bounded at 16 MiB
    request_timeout=30.0,
    max_calls=256,
    workers=32,
    method_bytes={
        "Challenge": 1 * KIB,
        "GetSyncStatus": 1 * KIB,
        "Authorize": 192 * KIB,  # two presentations of at most 64 KiB each, and a label
        "VerifyVisit": 96 * KIB,  # an assurance of at most 8 KiB and a presentation
    },
)
"""The local API: callers hold the local token (checked from the headers, before any of this)."""

PEER_LIMITS = ServiceLimits(
    max_request_bytes=96 * KIB,  # one presentation of at most 64 KiB, a label, a session id
    request_timeout=5.0,
    max_calls=256,
    workers=16,
    method_bytes={"PeerChallenge": 1 * KIB},
)
"""The peer API: every call is anonymous until a facility presentation is checked."""


def _server_options(limits: ServiceLimits) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", limits.max_request_bytes),
        ("grpc.max_send_message_length", limits.max_response_bytes),
        ("grpc.so_reuseport", 0),
        # Keep each stream's receive window at HTTP/2's initial 64 KiB: with probing, the
        # window grows to megabytes and a refused message is buffered up to it first.
        ("grpc.http2.bdp_probe", 0),
        ("grpc.max_connection_idle_ms", 120_000),
    ]


@dataclass
class AdmissionCounts:
    """Calls of one server by stage, as its coroutines count them (for status and tests)."""

    receiving: int = 0
    """Admitted, their request not complete yet: these hold no worker."""
    working: int = 0
    """Handed to a worker thread (queued for one, or running)."""
    refused: int = 0
    """Refused by a caller limit, the request deadline or a size limit."""


class LocalTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call whose ``authorization`` is not ``Bearer <local token>``, before its request is read."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        presented = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                presented = value.encode() if isinstance(value, str) else bytes(value)
        if hmac.compare_digest(presented, self._expected):
            return await continuation(details)
        message = "missing local token" if not presented else "wrong local token"

        async def refuse(_requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{message}: see DIR/local-token")

        # A request-streaming handler: gRPC does not read the request before calling it.
        return grpc.stream_unary_rpc_method_handler(refuse)


@dataclass
class RunningServer:
    """A server on its own event loop thread; :meth:`stop` ends both."""

    address: str
    """The address actually bound (``HOST:PORT`` or ``unix:PATH``)."""
    counts: AdmissionCounts
    _server: grpc.aio.Server
    _loop: asyncio.AbstractEventLoop
    _thread: threading.Thread
    _workers: ThreadPoolExecutor

    def stop(self, grace: float) -> None:
        """Refuse new calls, let calls in progress finish for ``grace`` seconds, then end them."""
        try:
            asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop).result(grace + 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=grace + 5)
            self._workers.shutdown(wait=True, cancel_futures=True)
            if not self._loop.is_running():
                self._loop.close()


async def _serve(
    call: Callable[[Any], Message],
    request_type: type[Message],
    method: str,
    limits: ServiceLimits,
    callers: CallerLimiter | None,
    counts: AdmissionCounts,
    workers: ThreadPoolExecutor,
    context: grpc.aio.ServicerContext[Any, Any],
) -> Message:
    """One call: admit, receive the whole request in time, then run ``call`` on a worker."""
    caller = Caller.from_peer(context.peer()) if callers is not None else None
    if callers is not None and caller is not None:
        try:
            callers.admit(caller)
        except RateLimitedError as exc:
            counts.refused += 1
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    try:
        request = await _receive(context, request_type, method, limits, counts)
        counts.working += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(workers, call, request)
        except ClearanceError as exc:
            await context.abort(status_code(exc), str(exc))
        except Exception:
            log.exception("unexpected error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the node's log")
        finally:
            counts.working -= 1
    finally:
        if callers is not None and caller is not None:
            callers.release(caller)


async def _receive(
    context: grpc.aio.ServicerContext[Any, Any],
    request_type: type[Message],
    method: str,
    limits: ServiceLimits,
    counts: AdmissionCounts,
) -> Message:
    """The call's one request message, whole, within the request deadline."""
    counts.receiving += 1
    problem: tuple[grpc.StatusCode, str] | None = None
    try:
        async with asyncio.timeout(limits.request_timeout):
            request = await context.read()
            after = await context.read() if request is not grpc.aio.EOF else grpc.aio.EOF
    except TimeoutError:
        problem = (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"the request did not arrive within {limits.request_timeout:g}s",
        )
    finally:
        counts.receiving -= 1
    if problem is None and (request is grpc.aio.EOF or after is not grpc.aio.EOF):
        problem = (grpc.StatusCode.INVALID_ARGUMENT, "a call carries exactly one request message")
    if problem is None:
        assert isinstance(request, request_type)
        cap = limits.method_bytes.get(method, limits.max_request_bytes)
        if request.ByteSize() > cap:
            problem = (grpc.StatusCode.RESOURCE_EXHAUSTED, f"{method} requests are at most {cap} bytes")
    if problem is not None:
        counts.refused += 1
        await context.abort(*problem)
    assert isinstance(request, Message)
    return request


def _service_handler(
    service: str,
    servicer: Any,
    limits: ServiceLimits,
    callers: CallerLimiter | None,
    counts: AdmissionCounts,
    workers: ThreadPoolExecutor,
) -> grpc.GenericRpcHandler:
    """One coroutine per method of ``service`` (from the proto), calling ``servicer``'s method of that name.

    Methods are registered as request-streaming so that gRPC calls the coroutine at
    the call's headers, before the request; on the wire a unary call is a stream of
    one message, so clients see an ordinary unary method.

    Raises:
        TypeError: ``servicer`` lacks a method of the service.
    """
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in pb.DESCRIPTOR.services_by_name[service].methods:
        call = getattr(servicer, method.name, None)
        if not callable(call):
            raise TypeError(f"{type(servicer).__name__} does not implement {service}.{method.name}")
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)

        def bind(call: Callable[[Any], Message], request_type: type[Message], name: str) -> Any:
            async def behaviour(_requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
                response: Message = await _serve(
                    call, request_type, name, limits, callers, counts, workers, context
                )
                return response

            return behaviour

        handlers[method.name] = grpc.stream_unary_rpc_method_handler(
            bind(call, request_type, method.name),
            request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(f"clearance.v1.{service}", handlers)


def _start(
    service: str,
    servicer: Any,
    listen: str,
    limits: ServiceLimits,
    *,
    credentials: grpc.ServerCredentials | None = None,
    interceptors: list[grpc.aio.ServerInterceptor] | None = None,
    callers: CallerLimiter | None = None,
) -> RunningServer:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"{service}-loop", daemon=True)
    workers = ThreadPoolExecutor(limits.workers, thread_name_prefix=service)
    counts = AdmissionCounts()
    handler = _service_handler(service, servicer, limits, callers, counts, workers)

    async def start() -> tuple[grpc.aio.Server, str]:
        server = grpc.aio.server(
            interceptors=interceptors,
            options=_server_options(limits),
            maximum_concurrent_rpcs=limits.max_calls,
        )
        server.add_generic_rpc_handlers([handler])
        try:
            port = (
                server.add_secure_port(listen, credentials)
                if credentials
                else server.add_insecure_port(listen)
            )
        except RuntimeError:
            port = 0
        if port == 0:
            raise InvalidArgumentError("listen", f"cannot listen on {listen} (in use?)")
        await server.start()
        return server, listen if listen.startswith("unix:") else f"{listen.rpartition(':')[0]}:{port}"

    thread.start()
    try:
        server, address = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        workers.shutdown(wait=False)
        raise
    return RunningServer(address, counts, server, loop, thread, workers)


def start_local_api(
    servicer: NodeServicer, listen: str, token: str, *, limits: ServiceLimits = LOCAL_LIMITS
) -> RunningServer:
    """Serve ``NodeService`` on ``listen`` (loopback or ``unix:PATH``), token required.

    Raises:
        InvalidArgumentError: the address cannot be bound.
    """
    socket_path = listen[len("unix:") :] if listen.startswith("unix:") else None
    if socket_path is not None and os.path.exists(socket_path):
        os.unlink(socket_path)  # a socket left by a killed node
    running = _start("NodeService", servicer, listen, limits, interceptors=[LocalTokenInterceptor(token)])
    if socket_path is not None:
        os.chmod(socket_path, 0o600)
    return running


def start_peer_api(
    servicer: PeerServicer,
    listen: str,
    *,
    tls: TlsFiles | None,
    limits: ServiceLimits = PEER_LIMITS,
    callers: CallerLimiter | None = None,
) -> RunningServer:
    """Serve ``PeerService`` on ``listen``: TLS with ``tls``, plaintext when it is None (loopback only).

    ``callers`` limits each caller address and prefix (a :class:`CallerLimiter` with
    the default limits when None).

    Raises:
        InvalidArgumentError: the address cannot be bound.
        StorageError: the TLS material cannot be read.
    """
    credentials = None
    if tls is not None:
        _ca, chain, key = tls.read()
        credentials = grpc.ssl_server_credentials([(key, chain)])
    return _start(
        "PeerService",
        servicer,
        listen,
        limits,
        credentials=credentials,
        callers=callers if callers is not None else CallerLimiter(),
    )
