"""gRPC over HTTP/2 by hand (the ``h2`` library), for what a gRPC client will not do.

An attacker is not bound by a gRPC library: it may call from any source
address it holds (here any of 127.0.0.0/8), claim a message of 79 MB and
send it slowly, or pipeline many calls on one connection. This client does
exactly that, speaking the gRPC wire format (a 5-byte length prefix per
message, ``grpc-status`` in the trailers) over a real socket, with HTTP/2
framing and flow control from an implementation we did not write.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions


@dataclass
class StreamResult:
    """What came back on one stream."""

    status: int | None = None
    """``grpc-status`` (None if the stream ended without one)."""
    details: str = ""
    body: bytes = b""
    ended: bool = False

    def message(self) -> bytes:
        """The one response message (its length prefix removed)."""
        assert len(self.body) >= 5, self.body
        (length,) = struct.unpack(">I", self.body[1:5])
        return self.body[5 : 5 + length]


@dataclass
class RawGrpcConnection:
    """One HTTP/2 connection to ``host:port``, from ``source`` (an address of this machine) if given."""

    host: str
    port: int
    source: str | None = None
    timeout: float = 30.0
    results: dict[int, StreamResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        if self.source is not None:
            self.sock.bind((self.source, 0))
        self.sock.connect((self.host, self.port))
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.initiate_connection()
        self._flush()

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        self.sock.close()

    def __enter__(self) -> RawGrpcConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------

    def start(self, path: str, metadata: tuple[tuple[str, str], ...] = ()) -> int:
        """Open a call to ``path`` (``/package.Service/Method``): headers only. Returns the stream id."""
        stream = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", f"{self.host}:{self.port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            *metadata,
        ]
        self.conn.send_headers(stream, headers)
        self.results[stream] = StreamResult()
        self._flush()
        return stream

    def unary(self, path: str, message: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> int:
        """Start a call and send its one message with the end of the stream. Returns the stream id."""
        stream = self.start(path, metadata)
        self.send(stream, struct.pack(">BI", 0, len(message)) + message, end=True)
        return stream

    def send(self, stream: int, data: bytes, *, end: bool = False) -> int:
        """Send ``data`` as flow control allows; stop early if the server ends the stream.

        Returns:
            The bytes sent.
        """
        sent = 0
        while sent < len(data):
            if self.results[stream].ended:
                return sent
            window = min(self.conn.local_flow_control_window(stream), self.conn.max_outbound_frame_size)
            if window <= 0:
                self._receive()
                continue
            chunk = data[sent : sent + window]
            self.conn.send_data(stream, chunk)
            sent += len(chunk)
            self._flush()
        if end and not self.results[stream].ended:
            self.conn.end_stream(stream)
            self._flush()
        return sent

    def push_oversized(self, stream: int, claimed: int, budget: int) -> tuple[int, StreamResult]:
        """On a started call, claim a ``claimed``-byte message; send its body until refused or ``budget`` is spent.

        Returns:
            The body bytes the server let through before it ended the stream, and what it answered.
        """
        self.send(stream, struct.pack(">BI", 0, claimed))
        chunk = b"\0" * 16384
        sent = 0
        while sent < budget and not self.results[stream].ended:
            sent += self.send(stream, chunk[: min(len(chunk), budget - sent)])
        return sent, self.wait(stream)

    def wait(self, *streams: int) -> StreamResult:
        """Read until every stream in ``streams`` has ended; the last one's result."""
        while not all(self.results[s].ended for s in streams):
            self._receive()
        return self.results[streams[-1]]

    # -- plumbing ------------------------------------------------------------

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            for result in self.results.values():
                result.ended = True
            return
        for event in self.conn.receive_data(data):
            self._on(event)
        self._flush()

    def _on(self, event: h2.events.Event) -> None:
        stream = getattr(event, "stream_id", 0)
        result = self.results.get(stream)
        if result is None:
            return
        if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            for name, value in event.headers:
                key = name.decode() if isinstance(name, bytes) else str(name)
                text = value.decode() if isinstance(value, bytes) else str(value)
                if key == "grpc-status":
                    result.status = int(text)
                elif key == "grpc-message":
                    result.details = text
        elif isinstance(event, h2.events.DataReceived):
            result.body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, stream)
        elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
            result.ended = True
