"""Signed status deltas: parsing (applying them is the trust store's job, see test_trust)."""

from __future__ import annotations

from typing import Any

import pytest

from clearance.errors import Reason
from clearance.jws import encode_compact
from clearance.keys import SigningKey
from clearance.statusdelta import MAX_UPDATES, STATUS_DELTA_TYP, parse_status_delta, sign_status_delta
from tests.factories import NOW, refused

KEY = SigningKey.generate()
URI = "https://registry.jp.example/statuslists/1"


def delta_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "sub": URI,
        "iat": NOW,
        "exp": NOW + 3600,
        "base_seq": 3,
        "seq": 4,
        "updates": [[7, 1], [9, 2]],
    }
    payload.update(overrides)
    return payload


def test_delta_advances_its_base_by_one_and_carries_its_updates() -> None:
    token = sign_status_delta(
        KEY, uri=URI, issued_at=NOW, expires_at=NOW + 3600, base_seq=3, updates=[(7, 1)]
    )
    delta = parse_status_delta(token)
    assert (delta.uri, delta.base_seq, delta.seq, delta.updates, delta.kid) == (URI, 3, 4, ((7, 1),), KEY.kid)
    assert delta.jws.typ == STATUS_DELTA_TYP


def test_an_empty_delta_only_renews_freshness() -> None:
    token = sign_status_delta(KEY, uri=URI, issued_at=NOW, expires_at=NOW + 60, base_seq=0, updates=[])
    assert parse_status_delta(token).updates == ()


def test_a_delta_with_another_typ_is_refused() -> None:
    with refused(Reason.WRONG_TYPE):
        parse_status_delta(encode_compact({"typ": "statuslist+jwt"}, delta_payload(), KEY))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"sub": ""}, id="no-uri"),
        pytest.param({"iat": "now"}, id="iat-not-int"),
        pytest.param({"exp": -1}, id="negative-exp"),
        pytest.param({"seq": 5}, id="skips-a-version"),
        pytest.param({"seq": 3}, id="does-not-advance"),
        pytest.param({"updates": {"7": 1}}, id="updates-not-an-array"),
        pytest.param({"updates": [[7]]}, id="update-without-status"),
        pytest.param({"updates": [[-1, 1]]}, id="negative-index"),
        pytest.param({"updates": [[7, 256]]}, id="status-over-a-byte"),
        pytest.param({"updates": [["7", 1]]}, id="index-as-text"),
        pytest.param({"updates": [[True, 1]]}, id="index-as-boolean"),
    ],
)
def test_a_delta_with_bad_fields_is_malformed(overrides: dict[str, Any]) -> None:
    with refused(Reason.MALFORMED):
        parse_status_delta(encode_compact({"typ": STATUS_DELTA_TYP}, delta_payload(**overrides), KEY))


def test_a_delta_with_too_many_updates_is_refused() -> None:
    payload = delta_payload(updates=[[i, 1] for i in range(MAX_UPDATES + 1)])
    with refused(Reason.TOO_LARGE):
        parse_status_delta(encode_compact({"typ": STATUS_DELTA_TYP}, payload, KEY))
