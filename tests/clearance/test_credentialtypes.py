"""Credential types: vct URLs under the issuer, type metadata in Japanese and English, SRI integrity."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from clearance.credentialtypes import (
    DISCLOSABLE_PERSONAL_CLAIMS,
    CredentialKind,
    kind_of,
    type_metadata_documents,
    vct_for,
    vct_integrity,
)
from clearance.errors import MalformedError

ISSUER = "https://registry.jp.clearance.example"


def test_vct_urls_are_under_the_issuer_and_name_their_kind() -> None:
    assert vct_for(CredentialKind.PERSONNEL, ISSUER) == f"{ISSUER}/types/personnel/v1"
    assert vct_for(CredentialKind.FACILITY, ISSUER + "/") == f"{ISSUER}/types/facility/v1"
    assert kind_of(f"{ISSUER}/types/personnel/v1", ISSUER) is CredentialKind.PERSONNEL


@pytest.mark.parametrize(
    "vct",
    [
        "https://other.example/types/personnel/v1",  # another issuer's type
        f"{ISSUER}/types/personnel/v2",
        f"{ISSUER}/types/personnel/v1/",
        "urn:clearance:vct:personnel:2",
        7,
    ],
)
def test_a_vct_that_is_not_one_of_the_issuers_types_names_no_kind(vct: object) -> None:
    assert kind_of(vct, ISSUER) is None


def test_the_urns_of_credentials_issued_before_still_name_their_kind() -> None:
    assert kind_of("urn:clearance:vct:personnel:1", ISSUER) is CredentialKind.PERSONNEL
    assert kind_of("urn:clearance:vct:facility:1", ISSUER) is CredentialKind.FACILITY


def test_documents_are_served_at_the_vct_paths_and_match_the_integrity() -> None:
    documents = type_metadata_documents(ISSUER + "/jp")
    assert sorted(documents) == ["/jp/types/facility/v1", "/jp/types/personnel/v1"]
    media_type, body = documents["/jp/types/personnel/v1"]
    expected = "sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode()

    assert media_type == "application/json"
    assert vct_integrity(CredentialKind.PERSONNEL, ISSUER + "/jp") == expected
    document = json.loads(body)
    assert document["vct"] == f"{ISSUER}/jp/types/personnel/v1"
    assert {d["locale"] for d in document["display"]} == {"en-US", "ja-JP"}
    disclosable = {c["path"][0] for c in document["claims"] if c["sd"] == "always"}
    assert disclosable == set(DISCLOSABLE_PERSONAL_CLAIMS)
    assert all({d["locale"] for d in c["display"]} == {"en-US", "ja-JP"} for c in document["claims"])


def test_type_metadata_is_published_only_under_an_https_issuer() -> None:
    with pytest.raises(MalformedError):
        type_metadata_documents("http://registry.example")
