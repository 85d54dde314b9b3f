"""One hardened HTTP(S) server for every web endpoint of the project: Starlette apps on uvicorn (h11).

:func:`start` runs an ASGI app on ``HOST:PORT`` in a background thread with
its own event loop and returns a :class:`RunningWebServer` (``.port``,
``.stop()``); :func:`serving` does the same inside a running loop. TLS comes
from PEM files; plaintext is allowed on loopback only
(:func:`~clearance.listen_address.check_listen_address`).

What an unauthenticated caller can hold is bounded (see :class:`WebLimits`):

- the request line and headers must arrive within ``header_timeout`` of the
  first byte (or of the connection): a timer armed at connection, re-armed
  when a keep-alive connection starts its next request, disarmed once the
  headers are complete (:class:`GuardedH11Protocol`); a slow client is cut off
  and costs no worker meanwhile;
- the TLS handshake has its own deadline; connections beyond
  ``max_connections`` are answered 503 and closed at once;
- the whole head is at most ``max_header_bytes`` (else 431), at most
  ``max_headers`` fields (431) and a target of at most ``max_url_bytes`` (414);
- a body is refused with 413 before it is read when its ``Content-Length``
  is too large, and as soon as a streamed body passes ``max_body_bytes``; it
  must arrive within ``body_timeout`` (408);
- idle keep-alive connections close after ``keep_alive_timeout``.

Every response carries ``X-Content-Type-Options: nosniff``,
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``, a
``Content-Security-Policy`` (the app may set its own for pages) and, over TLS,
``Strict-Transport-Security``. Only the declared methods are served (405
otherwise), and an exception in the app becomes a fixed 500 body: a
traceback is logged, never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from clearance.errors import InvalidArgumentError, StorageError
from clearance.listen_address import check_listen_address, split_listen_address
from clearance.web.guard import ASGIApp, RequestGuard

log = logging.getLogger("clearance.web")

DISCARD_LIMIT = 1024 * 1024
"""Bytes of an unwanted request body read and dropped after answering, before closing."""

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n"
)
_HEAD_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 23\r\nconnection: close\r\n\r\nrequest head too large\n"
)
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 5\r\nconnection: close\r\n\r\nbusy\n"
)


@dataclass(frozen=True)
class WebLimits:
    """What one server lets a caller hold. The defaults suit small JSON/text APIs."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    tls_handshake_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 10_000
    max_header_bytes: int = 16 * 1024
    max_headers: int = 64
    max_url_bytes: int = 4096
    max_body_bytes: int = 64 * 1024
    allowed_methods: frozenset[str] = frozenset({"GET", "HEAD", "POST"})
    content_security_policy: str = "default-src 'none'; frame-ancestors 'none'"


@dataclass(frozen=True)
class TlsPem:
    """A server certificate chain and its private key, as PEM files."""

    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """A server context: TLS 1.2 or later, this certificate and key.

        Raises:
            StorageError: the files cannot be read or do not form a key pair.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            raise StorageError(f"cannot load TLS certificate and key: {exc}") from exc
        return context


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline and a size cap for the request head, and a connection cap.

    After the app has answered a request whose body is still arriving (a 413,
    say), the rest of the body is read and dropped, up to
    :data:`DISCARD_LIMIT` bytes and for at most ``header_timeout`` seconds, so
    the client reads the answer instead of a reset; then the connection is closed.
    """

    limits: WebLimits = WebLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._discarded = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self._arm(self._head_too_slow)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_complete and self.conn.their_state is h11.SEND_BODY:
            self._discarded += len(data)
            if self._discarded > DISCARD_LIMIT:
                self.transport.close()
                return
            if self._deadline is None:
                self._arm(self.transport.close)
        elif self.conn.their_state is h11.IDLE:
            if self._deadline is None:
                self._arm(self._head_too_slow)  # a keep-alive connection starts its next request
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.limits.max_header_bytes:
                self._answer_and_close(_HEAD_TOO_LARGE_RESPONSE)
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self._discarded == 0:
            self._disarm()
            self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self._arm(self.transport.close)  # answered before the body ended: drain briefly, then close

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.limits.header_timeout, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        self._answer_and_close(_TIMEOUT_RESPONSE)

    def _answer_and_close(self, response: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


class _Server(uvicorn.Server):
    """uvicorn's server, started on our own socket with a TLS handshake deadline."""

    def __init__(self, config: uvicorn.Config, tls: ssl.SSLContext | None, limits: WebLimits) -> None:
        super().__init__(config)
        self._tls = tls
        self._limits = limits
        self.started_event = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise StorageError("the web app failed to start")
        config = self.config
        loop = asyncio.get_running_loop()

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop
            )

        assert sockets
        self.servers = []
        for sock in sockets:
            self.servers.append(
                await loop.create_server(
                    create_protocol,
                    sock=sock,
                    ssl=self._tls,
                    backlog=config.backlog,
                    ssl_handshake_timeout=self._limits.tls_handshake_timeout if self._tls else None,
                )
            )
        self.started = True
        self.started_event.set()

    async def run_on(self, sock: socket.socket) -> None:
        """Serve on ``sock`` until :attr:`should_exit` is set, then drain and close."""
        if not self.config.loaded:
            self.config.load()
        self.lifespan = self.config.lifespan_class(self.config)
        await self.startup(sockets=[sock])
        try:
            await self.main_loop()
        finally:
            await self.shutdown(sockets=[sock])


def _build(
    app: ASGIApp, listen: str, tls: TlsPem | None, insecure: bool, limits: WebLimits
) -> tuple[_Server, socket.socket]:
    check_listen_address(listen, insecure=insecure)
    if tls is None and not insecure:
        raise InvalidArgumentError(
            "--insecure", "TLS material is required unless serving plaintext on loopback"
        )
    host, port = split_listen_address(listen)
    guarded = RequestGuard(app, limits, tls=tls is not None)
    protocol = type("BoundGuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})
    config = uvicorn.Config(
        guarded,
        http=protocol,
        ws="none",
        lifespan="off",
        interface="asgi3",
        timeout_keep_alive=max(1, int(limits.keep_alive_timeout)),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        server_header=False,
        date_header=True,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=5,
        backlog=2048,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise InvalidArgumentError("--listen", f"cannot listen on {listen}: {exc.strerror}") from exc
    return _Server(config, tls.context() if tls else None, limits), sock


@dataclass
class RunningWebServer:
    """A server running in a thread of its own. ``stop()`` drains in-flight requests and joins."""

    port: int
    _server: _Server
    _thread: threading.Thread | None = None
    _errors: list[BaseException] = field(default_factory=list)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish, close connections, join the thread."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def connections(self) -> int:
        """Open HTTP connections (for tests and metrics)."""
        return len(self._server.server_state.connections)


def start(
    app: ASGIApp,
    listen: str,
    *,
    tls: TlsPem | None,
    insecure: bool = False,
    limits: WebLimits | None = None,
    name: str = "web",
) -> RunningWebServer:
    """Serve ``app`` on ``listen`` (port 0 picks one) in a background thread; return once it accepts.

    Raises:
        InvalidArgumentError: a bad address, plaintext off loopback, or the port is taken.
        StorageError: TLS files unusable, or the server did not start.
    """
    server, sock = _build(app, listen, tls, insecure, limits or WebLimits())
    port = int(sock.getsockname()[1])
    running = RunningWebServer(port, server)

    def run() -> None:
        try:
            asyncio.run(server.run_on(sock))
        except BaseException as exc:  # reported to the starter, then re-raised in this thread
            running._errors.append(exc)
            server.started_event.set()
            raise
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"{name}-server", daemon=True)
    running._thread = thread
    thread.start()
    if not server.started_event.wait(30) or running._errors:
        server.should_exit = True
        raise StorageError(f"the {name} server did not start")
    return running


@contextlib.asynccontextmanager
async def serving(
    app: ASGIApp,
    listen: str,
    *,
    tls: TlsPem | None,
    insecure: bool = False,
    limits: WebLimits | None = None,
) -> AsyncIterator[RunningWebServer]:
    """Serve ``app`` in the running event loop for the duration of the ``async with`` block.

    Raises:
        InvalidArgumentError: a bad address, plaintext off loopback, or the port is taken.
        StorageError: TLS files unusable.
    """
    server, sock = _build(app, listen, tls, insecure, limits or WebLimits())
    task = asyncio.create_task(server.run_on(sock))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        yield RunningWebServer(int(sock.getsockname()[1]), server)
    finally:
        server.should_exit = True
        await task
        sock.close()
