"""The wallet's HTTPS client: bounded responses, TLS always, peers' errors as our errors.

Every request goes to an ``https`` URL (a wallet never sends codes or presentations in the
clear) with the TLS trust the wallet was given. A response larger than its cap is refused
before it is buffered. An OAuth error object from a peer becomes a
:class:`~clearance.errors.ProtocolError` with the peer's code; anything else that goes wrong
on the way is a :class:`~clearance.errors.TransportError`.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx

from clearance.encoding import parse_json_object
from clearance.errors import MalformedError, OAuthErrorCode, ProtocolError, TransportError

MAX_RESPONSE = 256 * 1024
TIMEOUT = 30.0


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The system's trust, or only ``ca_file`` when given (a private PKI, a test CA)."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


class HolderHttp:
    """An HTTPS client for the wallet's protocol calls."""

    def __init__(self, tls: ssl.SSLContext | None = None, *, timeout: float = TIMEOUT) -> None:
        self._client = httpx.Client(verify=tls or tls_context(), timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HolderHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, url: str, **kwargs: Any) -> tuple[int, str, bytes]:
        """``(status, media type, body)`` of one request to an https URL.

        Raises:
            MalformedError: ``url`` is not https.
            TransportError: the peer could not be reached, or answered too much.
        """
        if urlsplit(url).scheme != "https":
            raise MalformedError(f"refusing a non-https URL: {url[:80]}")
        try:
            with self._client.stream(method, url, **kwargs) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE:
                        raise TransportError(f"{url[:80]} answered more than {MAX_RESPONSE} bytes")
                media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                return response.status_code, media, body
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach {url[:80]}: {exc}") from exc

    def json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """The JSON object a successful request answers.

        Raises:
            ProtocolError: the peer answered an OAuth error object.
            TransportError: unreachable, or an error status without one.
            MalformedError: a success that is not a JSON object.
        """
        status, _, body = self.request(method, url, **kwargs)
        if status >= 400:
            raise peer_error(url, status, body)
        return parse_json_object(body, what=f"answer of {url[:80]}", max_bytes=MAX_RESPONSE)


def peer_error(url: str, status: int, body: bytes) -> ClearanceProtocolOrTransport:
    """The error a peer's failed answer means: its OAuth error code, or a transport failure."""
    try:
        obj = parse_json_object(body, what="error", max_bytes=MAX_RESPONSE)
    except MalformedError:
        return TransportError(f"{url[:80]} answered HTTP {status}")
    try:
        code = OAuthErrorCode(str(obj.get("error")))
    except ValueError:
        return TransportError(f"{url[:80]} answered HTTP {status} ({str(obj.get('error'))[:40]})")
    return ProtocolError(code, str(obj.get("error_description", ""))[:300], status=status)


ClearanceProtocolOrTransport = ProtocolError | TransportError
