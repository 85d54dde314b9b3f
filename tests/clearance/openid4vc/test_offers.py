"""Credential offer URIs: by value and by reference, and what is refused."""

from __future__ import annotations

import pytest

from clearance.errors import MalformedError
from clearance.openid4vc.offers import CredentialOffer, new_offer, offer_reference_uri, parse_offer_uri
from tests.factories import NOW


def test_an_offer_by_value_round_trips_and_keeps_only_digests_in_its_record() -> None:
    made = new_offer(
        credential_issuer="https://registry.example", configuration_id="c", subject="a-1", now=NOW
    )
    parsed = parse_offer_uri(made.offer.uri())

    assert parsed == made.offer
    assert isinstance(parsed, CredentialOffer)
    assert parsed.tx_code is not None
    assert made.tx_code is not None
    assert len(made.tx_code) == parsed.tx_code.length == 6
    assert made.offer.pre_authorized_code not in repr(made.record)
    assert made.secret not in repr(made.record)
    assert made.record.offer(made.offer.credential_issuer, made.secret) == made.offer
    assert made.record.expires_at == NOW + 15 * 60


def test_an_offer_by_reference_names_an_https_url() -> None:
    uri = offer_reference_uri("https://registry.example/openid4vci/offers/x")
    assert parse_offer_uri(uri) == "https://registry.example/openid4vci/offers/x"


@pytest.mark.parametrize(
    "uri",
    [
        "openid-credential-offer://?",
        "openid-credential-offer://?credential_offer_uri=http%3A%2F%2Fplain.example%2Fo",
        "openid-credential-offer://?credential_offer=%7B%7D",
        "openid-credential-offer://?credential_offer=not-json",
        "openid-credential-offer://?credential_offer=%7B%7D&credential_offer_uri=https%3A%2F%2Fa",
        "mailto:someone@example",
        "openid-credential-offer://?credential_offer=" + "x" * 9000,
    ],
)
def test_malformed_offer_uris_are_refused(uri: str) -> None:
    with pytest.raises(MalformedError):
        parse_offer_uri(uri)
