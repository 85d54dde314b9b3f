"""Serve a Starlette app over real HTTPS on loopback, on the project's hardened server (:mod:`clearance.web`).

The server is started first and the app built once its port is known, so the app can know
its own https URL (an issuer's identifier, a verifier's response URI). The certificate is for
``localhost`` and ``127.0.0.1``, from a CA the test hands to its clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from clearance.tls import TlsFiles, create_tls
from clearance.web import TlsPem, start


def loopback_tls(directory: Path) -> TlsFiles:
    """A CA and a server certificate for localhost and 127.0.0.1."""
    return create_tls(directory, common_name="localhost", hosts=["localhost", "127.0.0.1"])


class _BuiltOnceListening:
    """An ASGI app that is the app built after the server bound its port."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "a request arrived before the app was built"
        await self.app(scope, receive, send)


@contextmanager
def serve_https(make_app: Callable[[str], ASGIApp], tls: TlsFiles) -> Iterator[str]:
    """Serve ``make_app(base_url)`` at ``https://localhost:PORT`` until the block ends; yield the URL."""
    late = _BuiltOnceListening()
    running = start(late, "127.0.0.1:0", tls=TlsPem(tls.cert, tls.key), name="test-https")
    try:
        base_url = f"https://localhost:{running.port}"
        late.app = make_app(base_url)
        yield base_url
    finally:
        running.stop()
