"""Serve a Starlette app over real HTTPS on loopback (uvicorn in a thread), for protocol tests.

The socket is bound first, so the app can be built knowing its own https URL (an issuer's
identifier, a verifier's response URI). The certificate is for ``localhost`` and
``127.0.0.1``, from a CA the test hands to its clients.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from clearance.tls import TlsFiles, create_tls


def loopback_tls(directory: Path) -> TlsFiles:
    """A CA and a server certificate for localhost and 127.0.0.1."""
    return create_tls(directory, common_name="localhost", hosts=["localhost", "127.0.0.1"])


@contextmanager
def serve_https(make_app: Callable[[str], ASGIApp], tls: TlsFiles) -> Iterator[str]:
    """Serve ``make_app(base_url)`` at ``https://localhost:PORT`` until the block ends; yield the URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"https://localhost:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        make_app(base_url),
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()

    def wait_started() -> None:
        while not server.started and thread.is_alive():
            started.wait(0.01)

    wait_started()
    if not server.started:
        raise RuntimeError("the test server did not start")
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
