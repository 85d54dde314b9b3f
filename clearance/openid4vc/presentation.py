"""The verifier's OpenID4VP 1.0 endpoints (``request_uri`` and ``direct_post``) as a Starlette app.

The node's own systems start a presentation with :func:`start_presentation` (through the
node's authenticated API, next to this app); the wallet then::

    GET  {base}/openid4vp/requests/{id}    the signed request object (application/oauth-authz-req+jwt)
    POST {base}/openid4vp/responses/{id}   vp_token and state, form-encoded (direct_post)

A response is checked in this order, and refused (HTTP 400, ``invalid_request``, with the
verification reason) without changing anything until the last step:

1. the request exists, has not expired and was not answered;
2. ``state`` is the request's;
3. ``vp_token`` is a JSON object with one presentation for the query's one credential;
4. the presentation verifies offline (:func:`clearance.verify.verify_presentation`) with
   ``aud`` = our client identifier and the request's own ``nonce``;
5. it answers the DCQL query: the credential type and every claim asked for;
6. the request is marked answered, atomically (a response posted twice is refused here,
   whichever of two concurrent posts comes second);
7. the backend decides and records the decision.

Backend calls and the verification run on Starlette's (bounded) thread pool, off the event
loop. A refused response is reported to the backend's :meth:`PresentationBackend.refused` hook (to
log it as the node logs every decision); the request stays open for a good response until it
expires.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearance.credentials import PERSONNEL_VCT
from clearance.encoding import b64url_encode
from clearance.errors import MalformedError, OAuthErrorCode, ProtocolError, Reason, VerificationError
from clearance.keys import Signer
from clearance.openid4vc.dcql import check_answer, credential_query
from clearance.openid4vc.edge import NO_STORE, protocol_endpoint, read_form
from clearance.openid4vc.request_objects import (
    REQUEST_MEDIA_TYPE,
    AuthorizationRequest,
    sign_request_object,
    x509_hash_client_id,
)
from clearance.trust import TrustStore
from clearance.verify import StalenessPolicy, VerifiedPresentation, verify_presentation

REQUESTS_PATH = "/openid4vp/requests"
RESPONSES_PATH = "/openid4vp/responses"
AUTHORIZATION_SCHEME = "openid4vp"
MAX_RESPONSE_BODY = 96 * 1024
DEFAULT_REQUEST_TTL = 300


@dataclass(frozen=True, slots=True)
class VerifierConfig:
    """The verifier's identity: where it is served and the certificate it signs requests with.

    Attributes:
        base_url: the https URL the app is served at (the response URI is under it).
        signer: the P-256 key the request objects are signed with.
        chain: its certificate chain, leaf first (DER); the leaf names ``base_url``'s host.
        request_ttl: seconds a request may be answered.
    """

    base_url: str
    signer: Signer
    chain: tuple[bytes, ...]
    request_ttl: int = DEFAULT_REQUEST_TTL

    def __post_init__(self) -> None:
        if urlsplit(self.base_url).scheme != "https" or not self.chain:
            raise MalformedError("a verifier is served over https and has a certificate")

    @property
    def client_id(self) -> str:
        return x509_hash_client_id(self.chain[0])

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


@dataclass(frozen=True, slots=True)
class PresentationRequest:
    """A started presentation: the signed request and what the backend needs to decide."""

    request_id: str
    request: AuthorizationRequest
    request_object: str
    context: Mapping[str, Any]
    """What the caller asked about (the node keeps the label here): opaque to the protocol."""


class PresentationBackend(Protocol):
    """The verifier's store, trust and decision; each store operation atomic."""

    def save(self, started: PresentationRequest) -> None:
        """Store a new request."""
        ...

    def load(self, request_id: str, now: int) -> PresentationRequest | None:
        """A request that exists, has not expired and was not answered."""
        ...

    def complete(self, request_id: str, now: int) -> bool:
        """Mark the request answered; False if it already was (or expired)."""
        ...

    def trust(self) -> tuple[TrustStore, StalenessPolicy]:
        """The verifier's trusted state and staleness policy, to verify against."""
        ...

    def decide(
        self, started: PresentationRequest, verified: VerifiedPresentation, now: int
    ) -> Mapping[str, Any]:
        """Decide on a verified answer and record it; the result is for the caller, not the wallet."""
        ...

    def refused(self, started: PresentationRequest | None, reason: str, now: int) -> None:
        """Record a refused response (``reason``: a verification reason or an OAuth error code)."""
        ...


@dataclass(frozen=True, slots=True)
class StartedPresentation:
    """What the caller shows the wallet (as a link or a QR code)."""

    request_id: str
    request_uri: str
    authorization_uri: str


def start_presentation(
    config: VerifierConfig,
    backend: PresentationBackend,
    *,
    dcql_query: Mapping[str, Any],
    context: Mapping[str, Any],
    now: int,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> StartedPresentation:
    """Make, sign and store a presentation request; return the URI a wallet opens.

    Raises:
        MalformedError: a DCQL query we cannot make responses to.
    """
    credential_query(dcql_query)
    request_id = b64url_encode(random_bytes(16))
    request = AuthorizationRequest(
        client_id=config.client_id,
        response_uri=config.url(f"{RESPONSES_PATH}/{request_id}"),
        nonce=b64url_encode(random_bytes(16)),
        state=b64url_encode(random_bytes(16)),
        dcql_query=dcql_query,
        issued_at=now,
        expires_at=now + config.request_ttl,
    )
    signed = sign_request_object(request, config.signer, config.chain)
    backend.save(PresentationRequest(request_id, request, signed, dict(context)))
    request_uri = config.url(f"{REQUESTS_PATH}/{request_id}")
    authorization_uri = (
        f"{AUTHORIZATION_SCHEME}://?client_id={quote(config.client_id, safe='')}"
        f"&request_uri={quote(request_uri, safe='')}"
    )
    return StartedPresentation(request_id, request_uri, authorization_uri)


class _RequestNonce:
    """A :class:`~clearance.verify.NonceStore` that knows one nonce: the request's.

    Single use is the request's (it is answered once), so consuming changes nothing here.
    """

    def __init__(self, nonce: str) -> None:
        self._nonce = nonce

    def issue(self, now: int) -> str:
        return self._nonce

    def consume(self, nonce: str, now: int) -> None:
        if not secrets.compare_digest(nonce.encode(), self._nonce.encode()):
            raise VerificationError(
                Reason.NONCE_UNKNOWN, "the presentation is bound to another request's nonce"
            )


def _presentation_of(vp_token: str, query_id: str) -> str:
    try:
        token = json.loads(vp_token)
    except ValueError as exc:
        raise VerificationError(Reason.MALFORMED, "vp_token is not JSON") from exc
    if not isinstance(token, dict) or set(token) != {query_id}:
        raise VerificationError(
            Reason.MISSING_CLAIM, f"vp_token must answer exactly the credential {query_id!r}"
        )
    answer = token[query_id]
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if not isinstance(answer, str):
        raise VerificationError(Reason.MALFORMED, "vp_token must carry one SD-JWT presentation")
    return answer


def verifier_app(
    config: VerifierConfig,
    backend: PresentationBackend,
    *,
    clock: Callable[[], int] = lambda: int(time.time()),
) -> Starlette:
    """The wallet-facing endpoints of a verifier (request objects and ``direct_post`` responses)."""
    base = urlsplit(config.base_url).path.rstrip("/")

    async def request_object(request: Request) -> Response:
        started = backend.load(str(request.path_params["request_id"]), clock())
        if started is None:
            raise ProtocolError(
                OAuthErrorCode.INVALID_REQUEST_URI, "no such request, or it is over", status=404
            )
        return Response(started.request_object, media_type=REQUEST_MEDIA_TYPE, headers=NO_STORE)

    async def response(request: Request) -> Response:
        now = clock()
        request_id = str(request.path_params["request_id"])
        started = await run_in_threadpool(backend.load, request_id, now)
        if started is None:
            await run_in_threadpool(backend.refused, None, "request_not_open", now)
            raise ProtocolError(OAuthErrorCode.INVALID_REQUEST, "no such request, or it was already answered")
        try:
            verified = _check(
                await read_form(request, MAX_RESPONSE_BODY, OAuthErrorCode.INVALID_REQUEST), started, now
            )
        except VerificationError as exc:
            backend.refused(started, exc.reason.value, now)
            raise ProtocolError(OAuthErrorCode.INVALID_REQUEST, exc.detail, reason=exc.reason) from exc
        except ProtocolError as exc:
            backend.refused(started, exc.code.value, now)
            raise
        if not backend.complete(request_id, now):
            backend.refused(started, Reason.NONCE_REPLAYED.value, now)
            raise ProtocolError(
                OAuthErrorCode.INVALID_REQUEST,
                "the request was already answered",
                reason=Reason.NONCE_REPLAYED,
            )
        await run_in_threadpool(backend.decide, started, verified, now)
        return JSONResponse({}, headers=NO_STORE)

    def _check(form: Mapping[str, str], started: PresentationRequest, now: int) -> VerifiedPresentation:
        if "error" in form:
            raise ProtocolError(OAuthErrorCode.ACCESS_DENIED, "the wallet declined", status=400)
        state, vp_token = form.get("state"), form.get("vp_token")
        if state is None or not secrets.compare_digest(state.encode(), started.request.state.encode()):
            raise VerificationError(Reason.INVALID_CLAIM, "state is not this request's")
        if vp_token is None:
            raise VerificationError(Reason.MISSING_CLAIM, "the response carries no vp_token")
        query = started.request.dcql_query
        presentation = _presentation_of(vp_token, str(credential_query(query)["id"]))
        trust, policy = backend.trust()
        verified = verify_presentation(
            presentation,
            trust=trust,
            audience=started.request.client_id,
            nonces=_RequestNonce(started.request.nonce),
            now=now,
            policy=policy,
            expected_vct=PERSONNEL_VCT,
        )
        credential = verified.credential
        claims = {"clearance": credential.clearance.to_json(), **credential.disclosed}
        check_answer(query, credential.vct, claims)
        return verified

    routes = [
        Route(base + REQUESTS_PATH + "/{request_id:str}", protocol_endpoint(request_object), methods=["GET"]),
        Route(base + RESPONSES_PATH + "/{request_id:str}", protocol_endpoint(response), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def vp_token(query_id: str, presentations: Sequence[str]) -> str:
    """A ``vp_token`` value: ``{query id: [presentation, ...]}`` as JSON (OpenID4VP 1.0 section 8.1)."""
    return json.dumps({query_id: list(presentations)}, separators=(",", ":"))
