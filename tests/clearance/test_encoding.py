"""Strict base64url and JSON: everything from outside is parsed through these two doors."""

from __future__ import annotations

import pytest

from clearance.encoding import (
    MAX_JSON_DEPTH,
    b64url_decode,
    b64url_encode,
    canonical_json,
    parse_json,
    parse_json_object,
)
from clearance.errors import MalformedError, Reason
from tests.factories import refused


@pytest.mark.parametrize("length", range(12))
def test_base64url_round_trips_every_length_without_padding(length: int) -> None:
    data = bytes(range(250, 250 - length, -1))
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text) == data
    assert b64url_decode(text.encode("ascii")) == data


def test_base64url_uses_the_url_safe_alphabet() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("AA==", id="padding"),
        pytest.param("+_8", id="standard-alphabet-plus"),
        pytest.param("-/8", id="standard-alphabet-slash"),
        pytest.param("AAAAA", id="impossible-length"),
        pytest.param("AA AA", id="white-space"),
        pytest.param("AA.A", id="dot"),
        pytest.param("AAé", id="non-ascii"),
        pytest.param("AB", id="non-zero-unused-bits-of-one-byte"),
        pytest.param("AAB", id="non-zero-unused-bits-of-two-bytes"),
    ],
)
def test_base64url_refuses_anything_but_canonical_unpadded_text(text: str) -> None:
    with refused(Reason.MALFORMED):
        b64url_decode(text)


def test_one_byte_string_has_exactly_one_encoding() -> None:
    """RFC 4648 section 3.5: otherwise a signature could be re-encoded and still verify."""
    encodings = {b64url_encode(bytes([value])) for value in range(256)}
    assert len(encodings) == 256
    accepted = []
    for first in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
        for second in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
            try:
                b64url_decode(first + second)
            except MalformedError:
                continue
            accepted.append(first + second)
    assert sorted(accepted) == sorted(encodings)


def test_json_parses_objects_arrays_and_scalars() -> None:
    assert parse_json(b'{"a": [1, "x", true, null, 2.5]}') == {"a": [1, "x", True, None, 2.5]}
    assert parse_json('  "text"  ') == "text"


def test_json_refuses_duplicate_member_names() -> None:
    with refused(Reason.DUPLICATE_MEMBER) as excinfo:
        parse_json(b'{"alg": "EdDSA", "alg": "none"}')
    assert "alg" in excinfo.value.detail


def test_json_refuses_duplicate_member_names_in_nested_objects() -> None:
    with refused(Reason.DUPLICATE_MEMBER):
        parse_json(b'{"cnf": {"jwk": 1, "jwk": 2}}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_refuses_non_finite_constants(constant: str) -> None:
    with refused(Reason.MALFORMED):
        parse_json(f'{{"iat": {constant}}}')


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"a": 1} x', id="trailing-garbage"),
        pytest.param(b"{'a': 1}", id="single-quotes"),
        pytest.param(b'{"a": 01}', id="leading-zero"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b'{"a": 1' + b"0" * 5000 + b"}", id="integer-with-5000-digits"),
    ],
)
def test_json_refuses_what_is_not_json(data: bytes) -> None:
    with refused(Reason.MALFORMED):
        parse_json(data)


def test_json_refuses_input_over_the_size_cap() -> None:
    with refused(Reason.TOO_LARGE):
        parse_json(b'"' + b"a" * 100 + b'"', max_bytes=64)


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"a":', "}")])
def test_json_refuses_ten_thousand_levels_of_nesting(opener: str, closer: str) -> None:
    with refused(Reason.TOO_DEEP):
        parse_json(opener * 10_000 + "1" + closer * 10_000)


def test_json_accepts_nesting_up_to_the_cap_and_refuses_one_more() -> None:
    at_cap = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(at_cap) is not None
    with refused(Reason.TOO_DEEP):
        parse_json("[" + at_cap + "]")


def test_json_depth_counts_structure_not_brackets_inside_strings() -> None:
    assert parse_json('{"a": "' + "[" * 100 + '"}') == {"a": "[" * 100}


def test_json_object_refuses_other_values() -> None:
    assert parse_json_object(b'{"a": 1}') == {"a": 1}
    with refused(Reason.MALFORMED):
        parse_json_object(b"[1]")


def test_canonical_json_is_compact_sorted_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()
