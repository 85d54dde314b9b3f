"""The ASGI layer of the web server's limits: methods, URL and header counts, bodies, headers, errors.

:class:`RequestGuard` wraps the app. It answers on its own, before the app
runs, when the method is not allowed (405), the target is too long (414),
there are too many header fields (431) or ``Content-Length`` is malformed
(400) or too large (413, without reading the body). While the app reads a
body it counts the bytes and the time: past ``max_body_bytes`` it answers
413, past ``body_timeout`` 408, and the app sees a disconnect. Whatever the
app sends after that is dropped. An exception in the app is logged and
answered with a fixed 500 body. Every response gets the security headers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clearance.web.server import WebLimits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("clearance.web")

_DISCONNECT: Message = {"type": "http.disconnect"}


class RequestGuard:
    """ASGI middleware enforcing :class:`~clearance.web.server.WebLimits` on each request."""

    def __init__(self, app: ASGIApp, limits: WebLimits, *, tls: bool) -> None:
        self.app = app
        self.limits = limits
        self.security_headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if tls:
            self.security_headers.append((b"strict-transport-security", b"max-age=31536000"))
        self.allow = ", ".join(sorted(limits.allowed_methods)).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = _Request(self, scope, receive, send)
        refusal = self._refusal(scope)
        if refusal is not None:
            status, body, extra = refusal
            # A refused head closes the connection; a refused body is drained first (see the server).
            await request.answer(status, body, extra, close=status != 413)
            return
        try:
            await self.app(scope, request.receive, request.send)
        except Exception:
            if request.answered:
                log.debug("app failed after the guard answered", exc_info=True)
                return
            log.exception("unhandled error serving %s %s", scope.get("method"), scope.get("path"))
            if not request.started:
                await request.answer(500, b"internal error\n")

    def _refusal(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        limits = self.limits
        if scope["method"] not in limits.allowed_methods:
            return 405, b"method not allowed\n", [(b"allow", self.allow)]
        if len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) > limits.max_url_bytes:
            return 414, b"URI too long\n", []
        headers = scope["headers"]
        if len(headers) > limits.max_headers:
            return 431, b"too many header fields\n", []
        lengths = [value for name, value in headers if name == b"content-length"]
        if lengths:
            if len(lengths) > 1 or not lengths[0].isdigit() or len(lengths[0]) > 18:
                return 400, b"bad content-length\n", []
            if int(lengths[0]) > limits.max_body_bytes:
                return 413, b"request body too large\n", []
        return None


class _Request:
    """One request's view through the guard: counted receive, filtered send."""

    def __init__(self, guard: RequestGuard, scope: Scope, receive: Receive, send: Send) -> None:
        self.guard = guard
        self.scope = scope
        self._receive = receive
        self._send = send
        self.started = False
        self.answered = False
        self.received = 0
        self.deadline = time.monotonic() + guard.limits.body_timeout

    async def receive(self) -> Message:
        if self.answered:
            return _DISCONNECT
        remaining = self.deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(self._receive(), max(remaining, 0.001))
        except TimeoutError:
            await self.answer(408, b"request body too slow\n", close=True)
            return _DISCONNECT
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.guard.limits.max_body_bytes:
                await self.answer(413, b"request body too large\n")
                return _DISCONNECT
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            headers += [(n, v) for n, v in self.guard.security_headers if n not in names]
            if b"content-security-policy" not in names:
                headers.append(
                    (b"content-security-policy", self.guard.limits.content_security_policy.encode())
                )
            message = {**message, "headers": headers}
        await self._send(message)

    async def answer(
        self, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None, *, close: bool = False
    ) -> None:
        """Answer on the app's behalf; later app messages are dropped.

        The server reads and drops what is left of the body (within limits)
        before it closes, so the client sees this answer rather than a reset.
        """
        if self.started:
            self.answered = True
            return
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *([(b"connection", b"close")] if close else []),
            *(extra or []),
        ]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})
        self.answered = True
