"""The hardened web server, with real sockets on loopback: slow, idle, greedy and malformed clients."""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clearance.errors import InvalidArgumentError
from clearance.tls import create_tls
from clearance.web import RunningWebServer, TlsPem, WebLimits, serving, start

SOCKET_TIMEOUT = 20.0


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello\n")


async def echo(request: Request) -> Response:
    return PlainTextResponse(f"{len(await request.body())}\n")


async def page(request: Request) -> Response:
    return PlainTextResponse("page\n", headers={"content-security-policy": "default-src 'self'"})


async def boom(request: Request) -> Response:
    raise RuntimeError("a secret detail in a traceback")


APP = Starlette(
    routes=[
        Route("/", hello),
        Route("/echo", echo, methods=["POST"]),
        Route("/page", page),
        Route("/boom", boom),
    ]
)


@pytest.fixture
def server() -> Iterator[RunningWebServer]:
    running = start(APP, "127.0.0.1:0", tls=None, insecure=True, limits=WebLimits(header_timeout=1.0))
    yield running
    running.stop()


def get(port: int, path: str = "/", *, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(SOCKET_TIMEOUT)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_client_that_stalls_mid_request_line_is_cut_off_while_others_are_served(
    server: RunningWebServer,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(b"GET /hel")
        assert get(server.port) == (200, b"hello\n")

        answer = read_until_closed(slow)  # returns only because the server closed it

    assert answer.startswith(b"HTTP/1.1 408")
    assert get(server.port) == (200, b"hello\n")


def test_a_keep_alive_connection_that_stalls_in_its_next_request_is_cut_off(server: RunningWebServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        client.settimeout(SOCKET_TIMEOUT)
        first = b""
        while not first.endswith(b"hello\n"):
            first += client.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        client.sendall(b"GET / HTTP/1.1\r\nhost")

        assert read_until_closed(client).startswith(b"HTTP/1.1 408")


def test_two_thousand_idle_connections_do_not_stop_a_request() -> None:
    running = start(APP, "127.0.0.1:0", tls=None, insecure=True, limits=WebLimits(header_timeout=60))
    idle = []
    try:
        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", running.port)))
        assert get(running.port) == (200, b"hello\n")
        assert running.connections >= 2000
    finally:
        for sock in idle:
            sock.close()
        running.stop()


def test_connections_beyond_the_cap_are_refused_at_once() -> None:
    running = start(APP, "127.0.0.1:0", tls=None, insecure=True, limits=WebLimits(max_connections=5))
    idle = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(5)]
    try:
        # The sixth connection is told 503 and closed; the first five are still open.
        with socket.create_connection(("127.0.0.1", running.port)) as extra:
            assert read_until_closed(extra).startswith(b"HTTP/1.1 503")
        idle[0].sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        idle[0].settimeout(SOCKET_TIMEOUT)
        assert idle[0].recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for sock in idle:
            sock.close()
        running.stop()


def test_idle_keep_alive_connections_are_closed() -> None:
    running = start(APP, "127.0.0.1:0", tls=None, insecure=True, limits=WebLimits(keep_alive_timeout=1))
    try:
        with socket.create_connection(("127.0.0.1", running.port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = read_until_closed(client)
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b"hello\n")
    finally:
        running.stop()


def _peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _send_until_answered(sock: socket.socket, head: bytes, chunk: bytes, total: int) -> bytes:
    """Send ``head`` then up to ``total`` bytes of ``chunk``; stop when the server answers or closes."""
    sock.sendall(head)
    sock.setblocking(False)
    sent, answer = 0, b""
    while sent < total:
        try:
            answer += sock.recv(65536)
            if answer:
                break
        except BlockingIOError:
            pass
        except ConnectionError:
            break
        try:
            sent += sock.send(chunk)
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionError):
            break
    sock.setblocking(True)
    try:
        return answer + read_until_closed(sock)
    except ConnectionResetError:  # the server stopped reading the rest: a reset after its answer
        return answer


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_100_mb_body_is_refused_without_being_buffered(server: RunningWebServer, framing: str) -> None:
    total = 100 * 1024 * 1024
    if framing == "content-length":
        head = f"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {total}\r\n\r\n".encode()
        chunk = b"x" * 65536
    else:
        head = b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    _peak_rss_reset()
    before = _peak_rss_kib()

    with socket.create_connection(("127.0.0.1", server.port)) as client:
        answer = _send_until_answered(client, head, chunk, total)

    assert answer.startswith(b"HTTP/1.1 413")
    assert _peak_rss_kib() - before < 20 * 1024  # far below the 100 MB offered
    assert get(server.port, "/echo", method="POST", body=b"y" * 1000) == (200, b"1000\n")


def test_a_body_that_trickles_is_cut_off() -> None:
    running = start(APP, "127.0.0.1:0", tls=None, insecure=True, limits=WebLimits(body_timeout=1))
    try:
        with socket.create_connection(("127.0.0.1", running.port)) as client:
            client.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab")
            assert read_until_closed(client).startswith(b"HTTP/1.1 408")
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", b"414"),
        (b"GET /?" + b"a" * 10_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", b"414"),
        (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", b"431"),
        (b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"b" * 20_000 + b"\r\n\r\n", b"431"),
        (
            b"GET / HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(100)) + b"\r\n",
            b"431",
        ),
        (b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1x\r\n\r\n", b"400"),
        (b"DELETE / HTTP/1.1\r\nhost: x\r\n\r\n", b"405"),
    ],
)
def test_oversized_or_malformed_requests_are_refused(
    server: RunningWebServer, request_bytes: bytes, status: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.sendall(request_bytes)
        assert read_until_closed(client).startswith(b"HTTP/1.1 " + status)


def test_an_error_is_a_fixed_500_and_every_response_has_security_headers(server: RunningWebServer) -> None:
    status, body = get(server.port, "/boom")
    assert status == 500
    assert b"secret" not in body
    assert b"Traceback" not in body
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=SOCKET_TIMEOUT)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.getheader("x-content-type-options") == "nosniff"
    assert response.getheader("x-frame-options") == "DENY"
    assert response.getheader("content-security-policy") == "default-src 'none'; frame-ancestors 'none'"
    assert response.getheader("server") is None
    response.read()
    connection.request("GET", "/page")
    page_response = connection.getresponse()
    assert page_response.getheader("content-security-policy") == "default-src 'self'"  # the page's own
    connection.close()


def test_tls_from_pem_files(tmp_path: Path) -> None:
    files = create_tls(tmp_path, common_name="web test", hosts=["127.0.0.1", "localhost"])
    running = start(APP, "127.0.0.1:0", tls=TlsPem(files.cert, files.key))
    try:
        context = ssl.create_default_context(cafile=str(files.ca))
        connection = http.client.HTTPSConnection(
            "127.0.0.1", running.port, context=context, timeout=SOCKET_TIMEOUT
        )
        connection.request("GET", "/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"hello\n")
        assert response.getheader("strict-transport-security") == "max-age=31536000"
        connection.close()
        with (
            socket.create_connection(("127.0.0.1", running.port)) as raw,
            pytest.raises(ssl.SSLError),
        ):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        running.stop()


def test_plaintext_only_on_loopback_and_tls_is_the_default() -> None:
    with pytest.raises(InvalidArgumentError) as off_loopback:
        start(APP, "0.0.0.0:0", tls=None, insecure=True)
    assert off_loopback.value.field == "--insecure"
    with pytest.raises(InvalidArgumentError):
        start(APP, "127.0.0.1:0", tls=None)


def test_serving_inside_a_running_event_loop() -> None:
    async def scenario() -> tuple[int, bytes]:
        async with serving(APP, "127.0.0.1:0", tls=None, insecure=True) as running:
            return await asyncio.to_thread(get, running.port)

    assert asyncio.run(scenario()) == (200, b"hello\n")


def test_stop_closes_the_port(server: RunningWebServer) -> None:
    port = server.port
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
