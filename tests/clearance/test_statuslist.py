"""Token Status List (draft-ietf-oauth-status-list): bit packing, encoding, zlib bombs, the signed token."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from clearance.encoding import b64url_decode, b64url_encode
from clearance.errors import Reason
from clearance.jws import encode_compact
from clearance.keys import SigningKey
from clearance.statuslist import (
    ALLOWED_BITS,
    MAX_LIST_BYTES,
    STATUS_LIST_TYP,
    Status,
    StatusList,
    parse_status_list_token,
    sign_status_list,
    verify_status_list_token,
)
from tests.factories import NOW, refused, zlib_bomb

# The draft's own examples (section 4.1): statuses by index, and the encoded list.
DRAFT_ONE_BIT = (
    {"bits": 1, "lst": "eNrbuRgAAhcBXQ"},
    [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1],
)
DRAFT_TWO_BITS = (
    {"bits": 2, "lst": "eNo76fITAAPfAgc"},
    [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3],
)


@pytest.mark.parametrize("example", [DRAFT_ONE_BIT, DRAFT_TWO_BITS], ids=["1-bit", "2-bit"])
def test_the_drafts_examples_decode_to_its_statuses(example: tuple[dict[str, Any], list[int]]) -> None:
    encoded, statuses = example
    decoded = StatusList.decode(encoded)
    assert [decoded.get(i) for i in range(len(statuses))] == statuses


@pytest.mark.parametrize("example", [DRAFT_ONE_BIT, DRAFT_TWO_BITS], ids=["1-bit", "2-bit"])
def test_setting_the_drafts_statuses_gives_its_bytes(example: tuple[dict[str, Any], list[int]]) -> None:
    encoded, statuses = example
    built = StatusList(encoded["bits"], len(statuses))
    for index, status in enumerate(statuses):
        built.set(index, status)
    assert built.to_bytes() == zlib.decompress(b64url_decode(encoded["lst"]))


def test_entries_are_packed_least_significant_bit_first() -> None:
    two_bits = StatusList(2, 8)
    two_bits.set(0, Status.REVOKED)
    two_bits.set(3, Status.SUSPENDED)
    two_bits.set(5, 3)
    assert two_bits.to_bytes() == bytes([0b10_00_00_01, 0b00_00_11_00])
    one_bit = StatusList(1, 16)
    one_bit.set(9, 1)
    assert one_bit.to_bytes() == bytes([0, 0b10])


@pytest.mark.parametrize("bits", ALLOWED_BITS)
def test_every_status_that_fits_round_trips_through_the_wire_form(bits: int) -> None:
    size = 300
    original = StatusList(bits, size)
    for index in range(0, size, 7):
        original.set(index, (index * 5 + 1) % (1 << bits))
    decoded = StatusList.decode(original.encode())
    assert decoded.bits == bits
    assert [decoded.get(i) for i in range(size)] == [original.get(i) for i in range(size)]


def test_setting_an_entry_leaves_its_neighbours_alone() -> None:
    statuses = StatusList(2, 4)
    for index in range(4):
        statuses.set(index, 3)
    statuses.set(2, 0)
    assert [statuses.get(i) for i in range(4)] == [3, 3, 0, 3]


def test_non_zero_lists_every_entry_that_is_not_valid_in_order() -> None:
    statuses = StatusList(2, 100_000)
    for index, status in [(99_999, 1), (3, 2), (40_000, 1)]:
        statuses.set(index, status)
    assert list(statuses.non_zero()) == [(3, 2), (40_000, 1), (99_999, 1)]


def test_copy_is_independent() -> None:
    original = StatusList(2, 8)
    copy = original.copy()
    copy.set(1, 1)
    assert original.get(1) == 0


@pytest.mark.parametrize("index", [-1, 8, 10**9, True, "1"])
def test_an_index_outside_the_list_is_refused(index: Any) -> None:
    with refused(Reason.STATUS_INDEX_OUT_OF_RANGE):
        StatusList(2, 8).get(index)
    with refused(Reason.STATUS_INDEX_OUT_OF_RANGE):
        StatusList(2, 8).set(index, 1)


def test_a_status_that_does_not_fit_its_bits_is_refused() -> None:
    with refused(Reason.MALFORMED):
        StatusList(2, 8).set(0, 4)
    with refused(Reason.MALFORMED):
        StatusList(1, 8).set(0, -1)


@pytest.mark.parametrize("bits", [0, 3, 16])
def test_only_1_2_4_or_8_bits_are_allowed(bits: int) -> None:
    with refused(Reason.MALFORMED):
        StatusList(bits, 8)
    with refused(Reason.MALFORMED):
        StatusList.decode({"bits": bits, "lst": StatusList(1, 8).encode()["lst"]})


def test_a_list_of_no_entries_or_past_the_cap_cannot_be_made() -> None:
    with refused(Reason.TOO_LARGE):
        StatusList(2, 0)
    with refused(Reason.TOO_LARGE):
        StatusList(8, MAX_LIST_BYTES + 1)


def test_a_zlib_bomb_is_refused_without_inflating_it() -> None:
    bomb = zlib_bomb()
    assert len(bomb) < 512 * 1024  # small on the wire, 256 MiB inflated
    with refused(Reason.TOO_LARGE):
        StatusList.decode({"bits": 2, "lst": b64url_encode(bomb)})


def test_a_list_exactly_at_a_lower_cap_is_accepted_and_one_byte_more_is_not() -> None:
    data = bytes(1024)
    assert (
        StatusList.decode({"bits": 8, "lst": b64url_encode(zlib.compress(data))}, max_bytes=1024).size == 1024
    )
    with refused(Reason.TOO_LARGE):
        StatusList.decode({"bits": 8, "lst": b64url_encode(zlib.compress(data + b"\0"))}, max_bytes=1024)


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param("not an object", id="not-an-object"),
        pytest.param({"bits": 2}, id="no-lst"),
        pytest.param({"bits": "2", "lst": "eNo76fITAAPfAgc"}, id="bits-as-text"),
        pytest.param({"bits": 2, "lst": 7}, id="lst-not-text"),
        pytest.param({"bits": 2, "lst": "eNo76fITAAPfAgc="}, id="padded"),
        pytest.param({"bits": 2, "lst": b64url_encode(b"plain bytes")}, id="not-zlib"),
        pytest.param({"bits": 2, "lst": b64url_encode(zlib.compress(b"\x01" * 64)[:-6])}, id="truncated"),
        pytest.param({"bits": 2, "lst": b64url_encode(zlib.compress(b""))}, id="empty-list"),
        pytest.param({"bits": 2, "lst": b64url_encode(zlib.compress(b"\0", wbits=-15))}, id="raw-deflate"),
    ],
)
def test_a_status_list_that_is_not_base64url_zlib_is_malformed(encoded: Any) -> None:
    with refused(Reason.MALFORMED):
        StatusList.decode(encoded)


# -- the Status List Token ---------------------------------------------------------------

KEY = SigningKey.generate()
URI = "https://registry.jp.example/statuslists/1"


def signed(statuses: StatusList | None = None, **overrides: Any) -> str:
    fields: dict[str, Any] = dict(uri=URI, issued_at=NOW, ttl=300, expires_at=NOW + 3600, seq=4)
    fields.update(overrides)
    return sign_status_list(statuses or StatusList(2, 64), KEY, **fields)


def test_status_list_token_follows_the_draft() -> None:
    statuses = StatusList(2, 64)
    statuses.set(5, Status.SUSPENDED)
    token = verify_status_list_token(signed(statuses), KEY.public)
    assert token.jws.header == {"alg": "EdDSA", "typ": STATUS_LIST_TYP, "kid": KEY.kid}
    assert set(token.jws.payload) == {"sub", "iat", "exp", "ttl", "seq", "status_list"}
    assert (token.uri, token.issued_at, token.expires_at, token.ttl, token.seq) == (
        URI,
        NOW,
        NOW + 3600,
        300,
        4,
    )
    assert token.status_of(5) == Status.SUSPENDED
    assert token.kid == KEY.kid


def test_status_list_token_signed_by_another_key_is_refused() -> None:
    with refused(Reason.BAD_SIGNATURE):
        verify_status_list_token(signed(), SigningKey.generate().public)


def test_status_list_token_with_another_typ_is_refused() -> None:
    payload = parse_status_list_token(signed()).jws.payload
    with refused(Reason.WRONG_TYPE):
        parse_status_list_token(encode_compact({"typ": "JWT", "kid": KEY.kid}, payload, KEY))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", None),
        ("sub", ""),
        ("iat", None),
        ("iat", "now"),
        ("exp", -1),
        ("ttl", 1.5),
        ("seq", -1),
        ("status_list", None),
    ],
)
def test_status_list_token_with_bad_claims_is_malformed(claim: str, value: Any) -> None:
    payload = dict(parse_status_list_token(signed()).jws.payload)
    if value is None:
        del payload[claim]
    else:
        payload[claim] = value
    with refused(Reason.MALFORMED):
        parse_status_list_token(encode_compact({"typ": STATUS_LIST_TYP, "kid": KEY.kid}, payload, KEY))


def test_status_list_token_carrying_a_zlib_bomb_is_refused() -> None:
    payload = {"sub": URI, "iat": NOW, "status_list": {"bits": 2, "lst": b64url_encode(zlib_bomb())}}
    with refused(Reason.TOO_LARGE):
        parse_status_list_token(encode_compact({"typ": STATUS_LIST_TYP, "kid": KEY.kid}, payload, KEY))


def test_freshness_distinguishes_expired_from_stale() -> None:
    token = parse_status_list_token(signed(issued_at=NOW, expires_at=NOW + 3600))
    assert token.freshness_problem(NOW + 100, max_age=3600) is None
    stale = token.freshness_problem(NOW + 200, max_age=100)
    assert stale is not None
    assert stale.reason is Reason.STATUS_LIST_STALE
    expired = token.freshness_problem(NOW + 3600, max_age=10**9)
    assert expired is not None
    assert expired.reason is Reason.STATUS_LIST_EXPIRED
