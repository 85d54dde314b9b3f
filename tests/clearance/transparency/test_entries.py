"""The trust-event entry: a fixed format that holds a type, a level, an hour and a commitment only."""

from __future__ import annotations

import datetime

import pytest

from clearance.errors import Reason, VerificationError
from clearance.transparency.entries import EventType, TrustEvent, commitment

AT = datetime.datetime(2026, 9, 21, 14, 59, 59, tzinfo=datetime.UTC)


def test_an_entry_round_trips_and_keeps_only_the_hour() -> None:
    event = TrustEvent.of(EventType.CREDENTIAL_ISSUED, b"signed credential", at=AT, level="TOP_SECRET")
    data = event.encode()
    assert len(data) == 39 + len("TOP_SECRET")
    assert data[:3] == bytes([1, 1, 10])
    assert TrustEvent.decode(data) == event
    assert event.time == datetime.datetime(2026, 9, 21, 14, tzinfo=datetime.UTC)
    assert event.commitment == commitment(EventType.CREDENTIAL_ISSUED, b"signed credential")
    # The same artifact under another event type commits differently.
    assert commitment(EventType.CREDENTIAL_REVOKED, b"signed credential") != event.commitment


def test_only_credential_events_carry_a_level() -> None:
    with pytest.raises(ValueError, match="carries no level"):
        TrustEvent.of(EventType.BUNDLE_PUBLISHED, b"bundle", at=AT, level="SECRET")
    with pytest.raises(ValueError, match="A-Z"):
        TrustEvent.of(EventType.CREDENTIAL_ISSUED, b"c", at=AT, level="secret; name=Alice")
    with pytest.raises(ValueError, match="time zone"):
        TrustEvent.of(EventType.AUDIT_HEAD, b"h", at=AT.replace(tzinfo=None))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes([2, 1, 0]) + bytes(36),  # another format version
        bytes([1, 99, 0]) + bytes(36),  # unknown event type
        bytes([1, 1, 0]) + bytes(35),  # short
        bytes([1, 1, 0]) + bytes(37),  # long
        bytes([1, 5, 6]) + b"SECRET" + bytes(36),  # a level on a bundle entry
        bytes([1, 1, 6]) + b"secret" + bytes(36),
        bytes([1, 1, 33]) + b"A" * 33 + bytes(36),
    ],
)
def test_malformed_entries_are_refused(data: bytes) -> None:
    with pytest.raises(VerificationError) as refused:
        TrustEvent.decode(data)
    assert refused.value.reason is Reason.ENTRY_INVALID
