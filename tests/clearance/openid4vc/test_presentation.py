"""OpenID4VP 1.0 at the verifier: our wallet answers a signed request; bad responses are refused
with ``invalid_request`` and the verification reason, and change nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from clearance.errors import OAuthErrorCode, ProtocolError, Reason, VerificationError
from clearance.jws import decode_compact
from clearance.openid4vc.holder_http import HolderHttp, tls_context
from clearance.openid4vc.holder_presentation import fetch_request, plan_response, send_response
from clearance.openid4vc.presentation import StartedPresentation, vp_token
from clearance.openid4vc.request_objects import REQUEST_TYP, x509_hash_client_id
from clearance.sdjwt import present
from tests.factories import Holder, refused
from tests.openid4vc_worlds import VerifierWorld, verifier_certificate


@pytest.fixture
def http(verifier: VerifierWorld) -> Iterator[HolderHttp]:
    with HolderHttp(tls_context(str(verifier.tls.ca))) as client:
        yield client


def answer(verifier: VerifierWorld, started: StartedPresentation, http: HolderHttp) -> tuple[str, Holder]:
    """The credential our wallet would present, after fetching and checking the request."""
    credential, holder = verifier.registry.issue()
    verified = fetch_request(
        started.authorization_uri, http=http, trusted_cas=[verifier.ca_der], now=verifier.clock.now
    )
    plan = plan_response(verified, [credential])
    send_response(plan, holder.key, http=http, now=verifier.clock.now)
    return credential, holder


def test_our_wallet_answers_and_the_verifier_decides(verifier: VerifierWorld, http: HolderHttp) -> None:
    started = verifier.start()
    answer(verifier, started, http)
    assert verifier.backend.decisions == [(started.request_id, {"decision": "allow", "level": "SECRET"})]


def test_the_request_object_is_signed_with_an_x509_hash_client_id(
    verifier: VerifierWorld, http: HolderHttp
) -> None:
    started = verifier.start()
    status, media, body = http.request("GET", started.request_uri)
    jws = decode_compact(body.decode())

    assert (status, media, jws.typ, jws.header["alg"]) == (
        200,
        "application/oauth-authz-req+jwt",
        REQUEST_TYP,
        "ES256",
    )
    assert jws.payload["client_id"] == x509_hash_client_id(verifier.config.chain[0])
    assert jws.payload["response_mode"] == "direct_post"
    assert [c["path"] for c in jws.payload["dcql_query"]["credentials"][0]["claims"]] == [
        ["clearance", "jurisdiction"],
        ["clearance", "level"],
        ["clearance", "categories"],
    ]


def test_the_wallet_discloses_only_what_the_request_asks_for(
    verifier: VerifierWorld, http: HolderHttp
) -> None:
    started = verifier.start(disclose=("given_name",))
    credential, _ = verifier.registry.issue()
    verified = fetch_request(
        started.authorization_uri, http=http, trusted_cas=[verifier.ca_der], now=verifier.clock.now
    )
    assert plan_response(verified, [credential]).disclose == ("given_name",)


# -- bad responses -----------------------------------------------------------------------------------


def post(
    http: HolderHttp, started: StartedPresentation, verifier: VerifierWorld, form: dict[str, str]
) -> None:
    http.json("POST", f"{verifier.base_url}/openid4vp/responses/{started.request_id}", data=form)


def form_for(
    verifier: VerifierWorld,
    started: StartedPresentation,
    *,
    audience: str | None = None,
    nonce: str | None = None,
    disclose: tuple[str, ...] = (),
    tamper: bool = False,
) -> dict[str, str]:
    stored = verifier.backend.load(started.request_id, verifier.clock.now)
    assert stored is not None
    request = stored.request
    credential, holder = verifier.registry.issue()
    presentation = present(
        credential,
        holder.key,
        disclose=disclose,
        audience=audience or request.client_id,
        nonce=nonce or request.nonce,
        issued_at=verifier.clock.now,
    )
    if tamper:  # another signature byte: the issuer's signature no longer verifies
        jwt, rest = presentation.split("~", 1)
        header, payload, signature = jwt.split(".")
        flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
        presentation = f"{header}.{payload}.{flipped}~{rest}"
    return {"vp_token": vp_token("clearance", [presentation]), "state": request.state}


def expect_refusal(
    verifier: VerifierWorld, http: HolderHttp, started: StartedPresentation, form: dict[str, str], reason: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        post(http, started, verifier, form)
    assert caught.value.code is OAuthErrorCode.INVALID_REQUEST
    assert verifier.backend.refusals[-1] == (started.request_id, reason)
    assert verifier.backend.decisions == []


def test_a_response_posted_twice_is_refused(verifier: VerifierWorld, http: HolderHttp) -> None:
    started = verifier.start()
    form = form_for(verifier, started)
    post(http, started, verifier, form)
    with pytest.raises(ProtocolError) as caught:
        post(http, started, verifier, form)
    assert caught.value.code is OAuthErrorCode.INVALID_REQUEST
    assert len(verifier.backend.decisions) == 1


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("another client id", Reason.AUDIENCE_MISMATCH),
        ("another nonce", Reason.NONCE_UNKNOWN),
        ("tampered", Reason.BAD_SIGNATURE),
        ("omits a claim asked for", Reason.MISSING_CLAIM),
    ],
)
def test_a_bad_response_is_refused_and_the_request_stays_open(
    verifier: VerifierWorld, http: HolderHttp, case: str, reason: Reason
) -> None:
    started = verifier.start(disclose=("given_name",))
    bad = {
        "another client id": {"audience": "x509_hash:" + "A" * 43, "disclose": ("given_name",)},
        "another nonce": {"nonce": "not-this-request", "disclose": ("given_name",)},
        "tampered": {"tamper": True, "disclose": ("given_name",)},
        "omits a claim asked for": {},
    }[case]
    expect_refusal(verifier, http, started, form_for(verifier, started, **bad), reason.value)  # type: ignore[arg-type]
    post(http, started, verifier, form_for(verifier, started, disclose=("given_name",)))
    assert len(verifier.backend.decisions) == 1


def test_a_vp_token_for_another_request_is_refused(verifier: VerifierWorld, http: HolderHttp) -> None:
    first, second = verifier.start(), verifier.start()
    for_first = form_for(verifier, first)
    stored = verifier.backend.load(second.request_id, verifier.clock.now)
    assert stored is not None
    expect_refusal(
        verifier, http, second, {**for_first, "state": stored.request.state}, Reason.NONCE_UNKNOWN.value
    )
    post(http, first, verifier, for_first)


def test_a_wrong_state_or_a_malformed_vp_token_is_refused(verifier: VerifierWorld, http: HolderHttp) -> None:
    started = verifier.start()
    good = form_for(verifier, started)
    expect_refusal(verifier, http, started, {**good, "state": "other"}, Reason.INVALID_CLAIM.value)
    expect_refusal(verifier, http, started, {**good, "vp_token": "{"}, Reason.MALFORMED.value)
    expect_refusal(
        verifier, http, started, {**good, "vp_token": '{"other":["x"]}'}, Reason.MISSING_CLAIM.value
    )
    post(http, started, verifier, good)


def test_an_expired_request_cannot_be_answered(verifier: VerifierWorld, http: HolderHttp) -> None:
    started = verifier.start()
    form = form_for(verifier, started)
    verifier.clock.now += verifier.config.request_ttl
    with pytest.raises(ProtocolError):
        post(http, started, verifier, form)
    assert verifier.backend.decisions == []


# -- the wallet's trust in the request ---------------------------------------------------------------


def test_the_wallet_refuses_a_verifier_whose_chain_reaches_no_ca_it_trusts(
    verifier: VerifierWorld, http: HolderHttp
) -> None:
    started = verifier.start()
    _, _, stranger_ca = verifier_certificate(verifier.base_url, verifier.clock.now)
    with refused(Reason.CHAIN_UNTRUSTED):
        fetch_request(started.authorization_uri, http=http, trusted_cas=[stranger_ca], now=verifier.clock.now)


def test_the_wallet_refuses_a_client_id_other_than_the_certificates(
    verifier: VerifierWorld, http: HolderHttp
) -> None:
    started = verifier.start()
    other = started.authorization_uri.replace("x509_hash%3A", "x509_hash%3AAAAA", 1)
    with refused(Reason.UNTRUSTED_ISSUER):
        fetch_request(other, http=http, trusted_cas=[verifier.ca_der], now=verifier.clock.now)


def test_the_wallet_refuses_an_expired_request(verifier: VerifierWorld, http: HolderHttp) -> None:
    started = verifier.start()
    with pytest.raises(VerificationError):
        fetch_request(
            started.authorization_uri,
            http=http,
            trusted_cas=[verifier.ca_der],
            now=verifier.clock.now + verifier.config.request_ttl,
        )


def test_of_two_concurrent_posts_of_one_response_one_is_decided(
    verifier: VerifierWorld, http: HolderHttp
) -> None:
    started = verifier.start()
    form = form_for(verifier, started)
    barrier = threading.Barrier(2)

    def attempt() -> bool:
        barrier.wait()
        try:
            post(http, started, verifier, form)
        except ProtocolError:
            return False
        return True

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(2)))
    assert sorted(outcomes) == [False, True]
    assert len(verifier.backend.decisions) == 1
