"""The wallet side of OpenID4VP 1.0: answer a verifier's signed request with a key-bound presentation.

Three steps, so the person sees who asks for what before anything is sent:

1. :func:`fetch_request` opens ``openid4vp://?client_id=...&request_uri=...``, fetches the
   request object and checks it (:func:`~.request_objects.verify_request_object`: the
   verifier's certificate reaches a CA the wallet trusts, the client id is its hash, the
   response goes to a name the certificate names);
2. :func:`plan_response` picks the credential that answers the DCQL query and the personal
   claims it would disclose (only those asked for);
3. :func:`send_response` binds the presentation to the verifier (``aud`` = its client id) and
   the request's nonce, and posts it to the ``response_uri`` (``direct_post``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from clearance.credentialtypes import DISCLOSABLE_PERSONAL_CLAIMS
from clearance.errors import MalformedError
from clearance.jws import decode_compact
from clearance.keys import Signer
from clearance.openid4vc.dcql import credential_query, requested_paths
from clearance.openid4vc.holder_http import HolderHttp, peer_error
from clearance.openid4vc.presentation import vp_token
from clearance.openid4vc.request_objects import REQUEST_MEDIA_TYPE, VerifiedRequest, verify_request_object
from clearance.sdjwt import Disclosure, present, split

_ALWAYS_VISIBLE = frozenset({"clearance", "iss", "vct", "status", "cnf", "sub", "iat", "nbf", "exp"})


def parse_authorization_uri(uri: str) -> tuple[str, str]:
    """``(client_id, request_uri)`` of an ``openid4vp://`` authorization request URI.

    Raises:
        MalformedError: not such a URI, or a request_uri that is not https.
    """
    if not isinstance(uri, str) or len(uri) > 4096:
        raise MalformedError("the authorization request URI is missing or too long")
    parts = urlsplit(uri.strip())
    query = parse_qs(parts.query)
    client_ids, request_uris = query.get("client_id", []), query.get("request_uri", [])
    if (
        parts.scheme not in ("openid4vp", "haip-vp", "https")
        or len(client_ids) != 1
        or len(request_uris) != 1
    ):
        raise MalformedError("an authorization request URI carries one client_id and one request_uri")
    if urlsplit(request_uris[0]).scheme != "https":
        raise MalformedError("the request_uri must be an https URL")
    return client_ids[0], request_uris[0]


def fetch_request(uri: str, *, http: HolderHttp, trusted_cas: Sequence[bytes], now: int) -> VerifiedRequest:
    """Fetch and check the request object an authorization request URI points to.

    Raises:
        MalformedError: a malformed URI or request object.
        VerificationError: a request object the wallet must not trust (see
            :func:`~.request_objects.verify_request_object`).
        ProtocolError, TransportError: the verifier refused or could not be reached.
    """
    client_id, request_uri = parse_authorization_uri(uri)
    status, _, body = http.request("GET", request_uri, headers={"Accept": REQUEST_MEDIA_TYPE})
    if status != 200:
        raise peer_error(request_uri, status, body)
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise MalformedError("the request object is not a JWT") from exc
    return verify_request_object(token, client_id=client_id, trusted_cas=trusted_cas, now=now)


@dataclass(frozen=True, slots=True)
class ResponsePlan:
    """What the wallet would send: which credential, disclosing which claims."""

    verified: VerifiedRequest
    query_id: str
    credential: str
    disclose: tuple[str, ...]


def _disclosable(credential: str) -> set[str]:
    return {d.name for d in map(Disclosure.parse, split(credential).disclosures) if d.name is not None}


def plan_response(verified: VerifiedRequest, credentials: Sequence[str]) -> ResponsePlan:
    """The credential that answers the request's DCQL query and the claims it would disclose.

    Raises:
        MalformedError: the query asks for something no held credential can answer (another
            type, a claim the credential lacks, a claim that is not ours to disclose).
    """
    query = verified.request.dcql_query
    wanted = credential_query(query)
    meta = wanted.get("meta")
    vct_values = meta.get("vct_values") if isinstance(meta, Mapping) else None
    paths = requested_paths(query)
    asked = [path[0] for path in paths if path[0] not in _ALWAYS_VISIBLE]
    not_personal = set(asked) - set(DISCLOSABLE_PERSONAL_CLAIMS)
    if not_personal:
        raise MalformedError(
            f"the verifier asks for claims this wallet does not disclose: {sorted(not_personal)}"
        )
    for credential in credentials:
        payload: Mapping[str, Any] = decode_compact(split(credential).jwt, what="credential").payload
        if isinstance(vct_values, list) and payload.get("vct") not in vct_values:
            continue
        if not set(asked) <= _disclosable(credential):
            continue
        return ResponsePlan(verified, str(wanted["id"]), credential, tuple(dict.fromkeys(asked)))
    raise MalformedError("no credential in this wallet answers the verifier's request")


def send_response(plan: ResponsePlan, key: Signer, *, http: HolderHttp, now: int) -> dict[str, Any]:
    """Present the planned credential to the verifier and post it to its ``response_uri``.

    Raises:
        ProtocolError: the verifier refused the response (its error code).
        TransportError: the verifier could not be reached.
    """
    request = plan.verified.request
    presentation = present(
        plan.credential,
        key,
        disclose=plan.disclose,
        audience=request.client_id,
        nonce=request.nonce,
        issued_at=now,
    )
    form = {"vp_token": vp_token(plan.query_id, [presentation]), "state": request.state}
    return http.json("POST", request.response_uri, data=form)
