"""OpenID4VCI 1.0 at the issuer: our wallet receives a credential; every bad input is refused with
the spec's error code and changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import OAuthErrorCode, ProtocolError
from clearance.jws import encode_compact
from clearance.keys import SigningKey
from clearance.openid4vc.holder_http import HolderHttp, tls_context
from clearance.openid4vc.holder_issuance import receive_credential
from clearance.openid4vc.issuance import IssuanceEventKind
from clearance.openid4vc.issuer_metadata import PERSONNEL_CONFIGURATION
from clearance.openid4vc.offers import PRE_AUTHORIZED_GRANT, NewOffer
from clearance.openid4vc.proofs import PROOF_TYP, make_proof
from tests.factories import NOW, Holder, Verifier, present_credential
from tests.openid4vc_worlds import IssuerWorld


@pytest.fixture
def http(issuer: IssuerWorld) -> Iterator[HolderHttp]:
    with HolderHttp(tls_context(str(issuer.tls.ca))) as client:
        yield client


def refused_with(code: OAuthErrorCode) -> pytest.RaisesExc[ProtocolError]:
    return pytest.raises(ProtocolError, check=lambda e: e.code is code)


def test_our_wallet_receives_a_credential_a_node_accepts(
    issuer: IssuerWorld, http: HolderHttp, wallet_key: SigningKey
) -> None:
    made = issuer.offer()
    received = receive_credential(made.offer.uri(), wallet_key, tx_code=made.tx_code, http=http, now=NOW)

    assert received.claims.holder_key == wallet_key.public
    node = Verifier.synced(issuer.world)
    presentation = present_credential(received.sd_jwt, Holder(wallet_key), nonce=node.challenge())
    assert node.verify(presentation).level == "SECRET"
    assert [e.kind for e in issuer.backend.events] == [
        IssuanceEventKind.OFFER_REDEEMED,
        IssuanceEventKind.CREDENTIAL_ISSUED,
    ]


def test_an_offer_by_reference_is_fetched_then_no_longer_served(
    issuer: IssuerWorld, http: HolderHttp, wallet_key: SigningKey
) -> None:
    made = issuer.offer()
    url = made.reference_url()
    assert http.json("GET", url) == made.offer.to_json()
    assert http.request("GET", f"{issuer.base_url}/openid4vci/offers/{made.record.offer_id}")[0] == 404
    receive_credential(made.reference_uri(), wallet_key, tx_code=made.tx_code, http=http, now=NOW)
    assert http.request("GET", url)[0] == 404


# -- the token endpoint -----------------------------------------------------------------------------


def redeem(http: HolderHttp, issuer: IssuerWorld, made: NewOffer, tx_code: str | None) -> dict[str, Any]:
    form = {"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": made.offer.pre_authorized_code}
    if tx_code is not None:
        form["tx_code"] = tx_code
    return http.json("POST", f"{issuer.base_url}/openid4vci/token", data=form)


def wrong(tx_code: str | None) -> str:
    assert tx_code is not None
    return str((int(tx_code) + 1) % 10 ** len(tx_code)).zfill(len(tx_code))


def test_an_offer_redeemed_twice_is_refused(issuer: IssuerWorld, http: HolderHttp) -> None:
    made = issuer.offer()
    redeem(http, issuer, made, made.tx_code)
    with refused_with(OAuthErrorCode.INVALID_GRANT):
        redeem(http, issuer, made, made.tx_code)


def test_an_expired_offer_is_refused(issuer: IssuerWorld, http: HolderHttp) -> None:
    made = issuer.offer(ttl=60)
    issuer.clock.now += 60
    with refused_with(OAuthErrorCode.INVALID_GRANT):
        redeem(http, issuer, made, made.tx_code)


def test_wrong_transaction_codes_are_counted_and_the_last_burns_the_offer(
    issuer: IssuerWorld, http: HolderHttp
) -> None:
    made = issuer.offer(tx_code_tries=3)
    for _ in range(2):
        with refused_with(OAuthErrorCode.INVALID_GRANT):
            redeem(http, issuer, made, wrong(made.tx_code))
    redeem(http, issuer, made, made.tx_code)  # two wrong tries were allowed

    burnt = issuer.offer(tx_code_tries=3)
    for _ in range(3):
        with refused_with(OAuthErrorCode.INVALID_GRANT):
            redeem(http, issuer, burnt, wrong(burnt.tx_code))
    with refused_with(OAuthErrorCode.INVALID_GRANT):
        redeem(http, issuer, burnt, burnt.tx_code)
    details = [e.detail for e in issuer.backend.events if e.offer_id == burnt.record.offer_id]
    assert details == ["wrong_tx_code", "wrong_tx_code", "burnt", "burnt"]


def test_a_missing_transaction_code_is_invalid_request_and_costs_no_try(
    issuer: IssuerWorld, http: HolderHttp
) -> None:
    made = issuer.offer(tx_code_tries=1)
    for _ in range(3):
        with refused_with(OAuthErrorCode.INVALID_REQUEST):
            redeem(http, issuer, made, None)
    redeem(http, issuer, made, made.tx_code)


def test_an_unknown_code_and_another_grant_type_are_refused(issuer: IssuerWorld, http: HolderHttp) -> None:
    with refused_with(OAuthErrorCode.INVALID_GRANT):
        http.json(
            "POST",
            f"{issuer.base_url}/openid4vci/token",
            data={"grant_type": PRE_AUTHORIZED_GRANT, "pre-authorized_code": "made-up"},
        )
    with refused_with(OAuthErrorCode.UNSUPPORTED_GRANT_TYPE):
        http.json(
            "POST",
            f"{issuer.base_url}/openid4vci/token",
            data={"grant_type": "authorization_code", "code": "x"},
        )


# -- the credential endpoint ------------------------------------------------------------------------


class Session:
    """A redeemed offer, for driving the credential endpoint by hand."""

    def __init__(self, issuer: IssuerWorld, http: HolderHttp) -> None:
        self.issuer, self.http = issuer, http
        self.made = issuer.offer()
        self.token = redeem(http, issuer, self.made, self.made.tx_code)["access_token"]

    def nonce(self) -> str:
        nonce = self.http.json("POST", f"{self.issuer.base_url}/openid4vci/nonce")["c_nonce"]
        assert isinstance(nonce, str)
        return nonce

    def request(self, proof: str, *, token: str | None = None, **body: Any) -> dict[str, Any]:
        payload = {"credential_configuration_id": PERSONNEL_CONFIGURATION, "proofs": {"jwt": [proof]}, **body}
        return self.http.json(
            "POST",
            f"{self.issuer.base_url}/openid4vci/credential",
            json=payload,
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    def good_proof(self, key: SigningKey) -> str:
        return make_proof(
            key, audience=self.issuer.base_url, nonce=self.nonce(), issued_at=self.issuer.clock.now
        )


@pytest.fixture
def session(issuer: IssuerWorld, http: HolderHttp) -> Session:
    return Session(issuer, http)


def proof_with(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    return encode_compact(header, claims, key)


BAD_PROOFS: dict[str, tuple[OAuthErrorCode, dict[str, Any], dict[str, Any]]] = {
    "wrong typ": (OAuthErrorCode.INVALID_PROOF, {"typ": "JWT"}, {}),
    "wrong audience": (OAuthErrorCode.INVALID_PROOF, {}, {"aud": "https://another.example"}),
    "old iat": (OAuthErrorCode.INVALID_PROOF, {}, {"iat": NOW - 3600}),
    "a kid instead of the key": (OAuthErrorCode.INVALID_PROOF, {"kid": "k-1", "jwk": None}, {}),
    "a nonce not issued here": (OAuthErrorCode.INVALID_NONCE, {}, {"nonce": b64url_encode(b"\0" * 40)}),
    "no nonce": (OAuthErrorCode.INVALID_NONCE, {}, {"nonce": None}),
}


@pytest.mark.parametrize("case", sorted(BAD_PROOFS))
def test_a_bad_proof_is_refused_and_the_grant_stays_usable(
    session: Session, wallet_key: SigningKey, case: str
) -> None:
    code, header_changes, claim_changes = BAD_PROOFS[case]
    header = {"typ": PROOF_TYP, "jwk": wallet_key.public.bare_jwk, **header_changes}
    claims = {"aud": session.issuer.base_url, "iat": NOW, "nonce": session.nonce(), **claim_changes}
    with refused_with(code):
        session.request(
            proof_with(
                wallet_key,
                {k: v for k, v in header.items() if v is not None},
                {k: v for k, v in claims.items() if v is not None},
            )
        )
    assert session.issuer.issued_to == []
    session.request(session.good_proof(wallet_key))
    assert session.issuer.issued_to == [wallet_key.kid]


def test_an_algorithm_outside_the_allow_list_is_refused(session: Session, wallet_key: SigningKey) -> None:
    header = b64url_encode(
        canonical_json({"typ": PROOF_TYP, "alg": "HS256", "jwk": wallet_key.public.bare_jwk})
    )
    body = b64url_encode(
        canonical_json({"aud": session.issuer.base_url, "iat": NOW, "nonce": session.nonce()})
    )
    with refused_with(OAuthErrorCode.INVALID_PROOF):
        session.request(f"{header}.{body}.{b64url_encode(b'mac')}")


def test_a_proof_signed_by_another_key_than_its_jwk_is_refused(
    session: Session, wallet_key: SigningKey
) -> None:
    other = SigningKey.generate("ES256")
    forged = proof_with(
        other,
        {"typ": PROOF_TYP, "jwk": wallet_key.public.bare_jwk},
        {"aud": session.issuer.base_url, "iat": NOW, "nonce": session.nonce()},
    )
    with refused_with(OAuthErrorCode.INVALID_PROOF):
        session.request(forged)


def test_a_key_other_than_the_one_the_offer_names_is_refused(
    issuer: IssuerWorld, http: HolderHttp, wallet_key: SigningKey
) -> None:
    made = issuer.offer(holder_thumbprint=wallet_key.kid)
    token = redeem(http, issuer, made, made.tx_code)["access_token"]
    session = Session(issuer, http)
    with refused_with(OAuthErrorCode.INVALID_PROOF):
        session.request(session.good_proof(SigningKey.generate("ES256")), token=token)
    session.request(session.good_proof(wallet_key), token=token)


def test_a_nonce_is_used_once(session: Session, wallet_key: SigningKey) -> None:
    proof = session.good_proof(wallet_key)
    session.request(proof)
    second = Session(session.issuer, session.http)
    with refused_with(OAuthErrorCode.INVALID_NONCE):
        second.request(proof)


def test_an_expired_nonce_is_refused(session: Session, wallet_key: SigningKey) -> None:
    nonce = session.nonce()
    session.issuer.clock.now += 301
    proof = make_proof(
        wallet_key, audience=session.issuer.base_url, nonce=nonce, issued_at=session.issuer.clock.now
    )
    with refused_with(OAuthErrorCode.INVALID_NONCE):
        session.request(proof)


def test_two_proofs_or_another_configuration_are_refused(session: Session, wallet_key: SigningKey) -> None:
    proof = session.good_proof(wallet_key)
    with refused_with(OAuthErrorCode.INVALID_PROOF):
        session.request(proof, proofs={"jwt": [proof, proof]})
    with refused_with(OAuthErrorCode.UNKNOWN_CREDENTIAL_CONFIGURATION):
        session.request(proof, credential_configuration_id="something_else")
    session.request(proof)


def test_the_access_token_is_checked_first_and_works_once(session: Session, wallet_key: SigningKey) -> None:
    status, _, _ = session.http.request(
        "POST", f"{session.issuer.base_url}/openid4vci/credential", content=b"not json at all"
    )
    assert status == 401
    with refused_with(OAuthErrorCode.INVALID_TOKEN):
        session.request(session.good_proof(wallet_key), token="made-up")
    session.request(session.good_proof(wallet_key))
    with refused_with(OAuthErrorCode.INVALID_TOKEN):
        session.request(session.good_proof(wallet_key))


def test_an_oversized_request_is_refused_before_it_is_read(session: Session) -> None:
    status, _, _ = session.http.request(
        "POST",
        f"{session.issuer.base_url}/openid4vci/credential",
        content=b"{" + b" " * (64 * 1024) + b"}",
        headers={"Authorization": f"Bearer {session.token}", "Content-Type": "application/json"},
    )
    assert status == 413


def test_concurrent_redemptions_of_one_offer_give_one_access_token(
    issuer: IssuerWorld, http: HolderHttp
) -> None:
    made = issuer.offer()
    barrier = threading.Barrier(6)

    def attempt() -> str:
        barrier.wait()
        try:
            redeem(http, issuer, made, made.tx_code)
        except ProtocolError as error:
            return error.code.value
        return "redeemed"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(6)))
    assert sorted(outcomes) == ["invalid_grant"] * 5 + ["redeemed"]
