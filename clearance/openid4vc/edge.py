"""The HTTP edge both protocol apps share: bounded request bodies and OAuth error responses.

Starlette reads a body only when asked; :func:`read_body` reads at most ``limit`` bytes and
refuses more (413) before buffering them, so an unauthenticated caller cannot make an endpoint
hold more memory than its limit. Protocol errors leave as the spec's JSON error object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clearance.encoding import parse_json_object
from clearance.errors import MalformedError, OAuthErrorCode, ProtocolError

NO_STORE = {"Cache-Control": "no-store"}


async def read_body(request: Request, limit: int, code: OAuthErrorCode) -> bytes:
    """The request body, refused (413, ``code``) once it passes ``limit`` bytes.

    Raises:
        ProtocolError: the body is larger than ``limit``.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ProtocolError(code, f"the request body is larger than {limit} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(code, f"the request body is larger than {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_form(request: Request, limit: int, code: OAuthErrorCode) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body with each parameter at most once.

    Raises:
        ProtocolError: another media type, too large, not UTF-8, or a repeated parameter.
    """
    if _media_type(request) != "application/x-www-form-urlencoded":
        raise ProtocolError(code, "the request must be application/x-www-form-urlencoded")
    body = await read_body(request, limit, code)
    try:
        fields = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=32
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(code, "the form cannot be read") from exc
    if any(len(values) != 1 for values in fields.values()):
        raise ProtocolError(code, "a form parameter is repeated")
    return {name: values[0] for name, values in fields.items()}


async def read_json(request: Request, limit: int, code: OAuthErrorCode) -> dict[str, Any]:
    """An ``application/json`` object body.

    Raises:
        ProtocolError: another media type, too large, or not a JSON object.
    """
    if _media_type(request) != "application/json":
        raise ProtocolError(code, "the request must be application/json")
    body = await read_body(request, limit, code)
    try:
        return parse_json_object(body, what="request body", max_bytes=limit)
    except MalformedError as exc:
        raise ProtocolError(code, exc.detail) from exc


def error_response(error: ProtocolError) -> JSONResponse:
    """The spec's error object with the error's HTTP status (and a Bearer challenge for 401)."""
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{error.code.value}"'
    return JSONResponse(error.to_json(), status_code=error.status, headers=headers)


Endpoint = Callable[[Request], Awaitable[Response]]


def protocol_endpoint(handler: Endpoint) -> Endpoint:
    """Wrap ``handler`` so that a :class:`ProtocolError` becomes the spec's error response."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ProtocolError as error:
            return error_response(error)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
