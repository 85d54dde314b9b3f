"""The credential issuer's endpoints (OpenID4VCI 1.0, pre-authorized code flow) as a Starlette app.

:func:`issuer_app` serves the metadata, token, nonce, credential and offer endpoints (paths in
:mod:`clearance.openid4vc.issuer_metadata`) over an :class:`IssuanceBackend`, which the
registry implements in its database. The protocol rules live here; the backend provides the
few operations that must be atomic in its store and the issuance itself:

* **token**: the pre-authorized code is redeemed at most once, before it expires, with the
  right transaction code; wrong codes are counted and the offer is burnt after the last try
  (``invalid_grant``); a missing one is ``invalid_request`` and costs no try;
* **nonce**: a ``c_nonce`` that costs the issuer no memory (:class:`~.proofs.NonceMinter`);
* **credential**: the access token is checked before the body is read (``invalid_token``);
  exactly one ``jwt`` proof, checked by :func:`~.proofs.verify_proof`; a key other than the
  one the offer was made for (when staff named one) is ``invalid_proof``; a nonce used before is
  ``invalid_nonce``; then the backend issues one credential for the grant and the proven key.

Backend calls run on Starlette's (bounded) thread pool, so a database backend does not block
the event loop. Every refusal leaves the store as it was (a wrong transaction code spends one try, as the spec
intends), and every outcome goes to the backend's audit hook as an :class:`IssuanceEvent`:
codes and identifiers, never personal data or codes.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearance.encoding import b64url_encode
from clearance.errors import ClearanceError, OAuthErrorCode, ProtocolError, StorageError
from clearance.keys import PublicKey
from clearance.openid4vc.edge import NO_STORE, protocol_endpoint, read_form, read_json
from clearance.openid4vc.issuer_metadata import (
    AUTHORIZATION_SERVER_METADATA_PATH,
    CREDENTIAL_PATH,
    ISSUER_METADATA_PATH,
    NONCE_PATH,
    OFFERS_PATH,
    TOKEN_PATH,
    IssuerConfig,
    authorization_server_metadata,
    credential_issuer_metadata,
    well_known_path,
)
from clearance.openid4vc.offers import (
    PRE_AUTHORIZED_GRANT,
    OfferRecord,
    Redemption,
    code_digest,
    offer_id_for,
    tx_code_digest,
)
from clearance.openid4vc.proofs import NonceMinter, verify_proof

MAX_TOKEN_REQUEST = 4096
MAX_CREDENTIAL_REQUEST = 16 * 1024
DEFAULT_ACCESS_TOKEN_TTL = 300


@dataclass(frozen=True, slots=True)
class Grant:
    """What an access token allows: one credential of ``configuration_id`` for ``subject``."""

    offer_id: str
    configuration_id: str
    subject: str
    holder_thumbprint: str | None
    expires_at: int


class IssuanceEventKind(enum.StrEnum):
    """What happened at the issuer endpoints (stable strings for audit logs)."""

    OFFER_REDEEMED = "offer_redeemed"
    OFFER_REFUSED = "offer_refused"
    CREDENTIAL_ISSUED = "credential_issued"
    CREDENTIAL_REFUSED = "credential_refused"


@dataclass(frozen=True, slots=True)
class IssuanceEvent:
    """One audited outcome. ``detail`` is a code (a :class:`Redemption` or an OAuth error code)."""

    kind: IssuanceEventKind
    offer_id: str | None
    detail: str
    at: int
    holder_thumbprint: str | None = None


class IssuanceBackend(Protocol):
    """The issuer's store and issuance, each operation atomic in the store."""

    def redeem(
        self, code_digest: str, tx_code_digest: str | None, token_digest: str, token_expires_at: int, now: int
    ) -> tuple[Redemption, str | None]:
        """Redeem the offer whose pre-authorized code has ``code_digest``, atomically.

        In one step: an unknown code is ``UNKNOWN``; a redeemed offer ``ALREADY_REDEEMED``; an
        offer at or past its expiry ``EXPIRED``; a burnt one ``BURNT``. If the offer asks for a
        transaction code: ``tx_code_digest`` None is ``TX_CODE_REQUIRED`` (nothing changes); a
        wrong one spends a try and is ``WRONG_TX_CODE``, or ``BURNT`` when it was the last.
        Otherwise the offer is marked redeemed, the access token digest stored with a grant
        for the offer until ``token_expires_at``, and ``REDEEMED`` returned. The second value
        is the offer id when an offer was found.
        """
        ...

    def live_offer(self, offer_id: str, now: int) -> OfferRecord | None:
        """The record of an offer neither redeemed, burnt nor expired (to serve it by reference)."""
        ...

    def grant(self, token_digest: str, now: int) -> Grant | None:
        """The grant of a live access token that has not been used to issue yet."""
        ...

    def use_nonce(self, nonce_id: str, expires_at: int, now: int) -> bool:
        """Record a ``c_nonce`` as used; False when it already was (keep it until ``expires_at``)."""
        ...

    def issue(self, grant: Grant, holder: PublicKey, now: int) -> str:
        """Issue the grant's credential to ``holder`` and use the grant up, atomically.

        Returns the SD-JWT as issued.

        Raises:
            ConflictError: the grant was already used.
            ClearanceError: the backend refuses to issue (consent withdrawn, say).
        """
        ...

    def audit(self, event: IssuanceEvent) -> None:
        """Record an outcome (in the same transaction as the change where there is one)."""
        ...


_REFUSED_REDEMPTION = {
    Redemption.UNKNOWN: "the pre-authorized code is not valid",
    Redemption.EXPIRED: "the credential offer has expired",
    Redemption.ALREADY_REDEEMED: "the credential offer was already redeemed",
    Redemption.WRONG_TX_CODE: "the transaction code is wrong",
    Redemption.BURNT: "too many wrong transaction codes: the offer can no longer be redeemed",
}


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        raise ProtocolError(OAuthErrorCode.INVALID_TOKEN, "a Bearer access token is required")
    return token.strip()


def _single_proof(body: dict[str, object]) -> object:
    """The one ``jwt`` proof of a credential request (``proofs`` of 1.0, or the older ``proof``)."""
    proofs, proof = body.get("proofs"), body.get("proof")
    if proofs is not None and proof is not None:
        raise ProtocolError(OAuthErrorCode.INVALID_CREDENTIAL_REQUEST, "both proof and proofs are given")
    if isinstance(proofs, dict):
        jwts = proofs.get("jwt")
        if set(proofs) != {"jwt"} or not isinstance(jwts, list):
            raise ProtocolError(OAuthErrorCode.INVALID_PROOF, "only jwt proofs are supported")
        if len(jwts) != 1:
            raise ProtocolError(OAuthErrorCode.INVALID_PROOF, "exactly one proof is expected: one credential")
        return jwts[0]
    if isinstance(proof, dict):
        if proof.get("proof_type") != "jwt":
            raise ProtocolError(OAuthErrorCode.INVALID_PROOF, "only jwt proofs are supported")
        return proof.get("jwt")
    raise ProtocolError(OAuthErrorCode.INVALID_PROOF, "the credential request carries no proof")


def issuer_app(
    config: IssuerConfig,
    backend: IssuanceBackend,
    *,
    nonce_key: bytes,
    clock: Callable[[], int] = lambda: int(time.time()),
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL,
) -> Starlette:
    """The credential issuer's endpoints for ``config``, over ``backend``.

    Args:
        config: the registry's issuer identifier, algorithms and name.
        backend: the store and the issuance.
        nonce_key: the secret (32 bytes or more) that makes ``c_nonce`` values; replicas share it.
        clock: seconds since the epoch (injected).
        random_bytes: randomness for access tokens and nonces (injected).
        access_token_ttl: seconds an access token lives.
    """
    nonces = NonceMinter(nonce_key, random_bytes=random_bytes)
    issuer_metadata = credential_issuer_metadata(config)
    server_metadata = authorization_server_metadata(config)
    base = well_known_path("", config.credential_issuer)

    async def issuer_metadata_endpoint(request: Request) -> Response:
        return JSONResponse(issuer_metadata)

    async def server_metadata_endpoint(request: Request) -> Response:
        return JSONResponse(server_metadata)

    async def offer_endpoint(request: Request) -> Response:
        secret = str(request.path_params["secret"])
        found = None
        if len(secret) <= 64:
            found = await run_in_threadpool(backend.live_offer, offer_id_for(secret), clock())
        if found is None:
            return JSONResponse({"error": "not_found"}, status_code=404, headers=NO_STORE)
        return JSONResponse(found.offer(config.credential_issuer, secret).to_json(), headers=NO_STORE)

    async def token(request: Request) -> Response:
        form = await read_form(request, MAX_TOKEN_REQUEST, OAuthErrorCode.INVALID_REQUEST)
        if form.get("grant_type") != PRE_AUTHORIZED_GRANT:
            raise ProtocolError(OAuthErrorCode.UNSUPPORTED_GRANT_TYPE, "only the pre-authorized code grant")
        code = form.get("pre-authorized_code")
        if not code or len(code) > 128:
            raise ProtocolError(OAuthErrorCode.INVALID_REQUEST, "pre-authorized_code is missing")
        tx_code = form.get("tx_code")
        if tx_code is not None and len(tx_code) > 32:
            raise ProtocolError(OAuthErrorCode.INVALID_GRANT, "the transaction code is wrong")
        now = clock()
        access_token = b64url_encode(random_bytes(32))
        outcome, offer_id = await run_in_threadpool(
            backend.redeem,
            code_digest(code),
            None if tx_code is None else tx_code_digest(code, tx_code),
            code_digest(access_token),
            now + access_token_ttl,
            now,
        )
        if outcome is not Redemption.REDEEMED:
            await run_in_threadpool(
                backend.audit, IssuanceEvent(IssuanceEventKind.OFFER_REFUSED, offer_id, outcome.value, now)
            )
            if outcome is Redemption.TX_CODE_REQUIRED:
                raise ProtocolError(OAuthErrorCode.INVALID_REQUEST, "this offer needs its transaction code")
            raise ProtocolError(OAuthErrorCode.INVALID_GRANT, _REFUSED_REDEMPTION[outcome])
        await run_in_threadpool(
            backend.audit, IssuanceEvent(IssuanceEventKind.OFFER_REDEEMED, offer_id, outcome.value, now)
        )
        return JSONResponse(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": access_token_ttl},
            headers=NO_STORE,
        )

    async def nonce(request: Request) -> Response:
        return JSONResponse({"c_nonce": nonces.mint(clock())}, headers=NO_STORE)

    async def credential(request: Request) -> Response:
        now = clock()
        grant = await run_in_threadpool(backend.grant, code_digest(_bearer(request)), now)
        if grant is None:
            raise ProtocolError(OAuthErrorCode.INVALID_TOKEN, "the access token is not valid (or was used)")
        try:
            issued, holder = await _credential(request, grant, now)
        except ProtocolError as error:
            backend.audit(
                IssuanceEvent(IssuanceEventKind.CREDENTIAL_REFUSED, grant.offer_id, error.code.value, now)
            )
            raise
        backend.audit(
            IssuanceEvent(
                IssuanceEventKind.CREDENTIAL_ISSUED, grant.offer_id, "issued", now, holder.thumbprint
            )
        )
        return JSONResponse({"credentials": [{"credential": issued}]}, headers=NO_STORE)

    async def _credential(request: Request, grant: Grant, now: int) -> tuple[str, PublicKey]:
        body = await read_json(request, MAX_CREDENTIAL_REQUEST, OAuthErrorCode.INVALID_CREDENTIAL_REQUEST)
        configuration = body.get("credential_configuration_id")
        if "credential_identifier" in body or configuration != grant.configuration_id:
            raise ProtocolError(
                OAuthErrorCode.UNKNOWN_CREDENTIAL_CONFIGURATION,
                "the request names another credential configuration than the offer",
            )
        proven = verify_proof(
            _single_proof(body),
            audience=config.credential_issuer,
            nonces=nonces,
            now=now,
            algorithms=config.proof_algs,
        )
        if grant.holder_thumbprint is not None and proven.key.thumbprint != grant.holder_thumbprint:
            raise ProtocolError(
                OAuthErrorCode.INVALID_PROOF, "the proof is for another key than the one this offer is for"
            )
        if not await run_in_threadpool(backend.use_nonce, proven.nonce_id, proven.nonce_expires_at, now):
            raise ProtocolError(OAuthErrorCode.INVALID_NONCE, "the c_nonce was already used")
        try:
            return await run_in_threadpool(backend.issue, grant, proven.key, now), proven.key
        except StorageError as exc:
            raise ProtocolError(OAuthErrorCode.SERVER_ERROR, "the registry cannot issue right now") from exc
        except ClearanceError as exc:
            raise ProtocolError(
                OAuthErrorCode.CREDENTIAL_REQUEST_DENIED, "the registry does not issue this credential now"
            ) from exc

    routes = [
        Route(well_known_path(ISSUER_METADATA_PATH, config.credential_issuer), issuer_metadata_endpoint),
        Route(
            well_known_path(AUTHORIZATION_SERVER_METADATA_PATH, config.credential_issuer),
            server_metadata_endpoint,
        ),
        Route(base + OFFERS_PATH + "/{secret:str}", offer_endpoint, methods=["GET"]),
        Route(base + TOKEN_PATH, protocol_endpoint(token), methods=["POST"]),
        Route(base + NONCE_PATH, protocol_endpoint(nonce), methods=["POST"]),
        Route(base + CREDENTIAL_PATH, protocol_endpoint(credential), methods=["POST"]),
    ]
    return Starlette(routes=routes)
