"""The log entry of a trust event: type, level, coarse time and a commitment. Nothing else.

Format ``1`` (all integers big-endian)::

    offset  size  field
    0       1     format version, 0x01
    1       1     event type (:class:`EventType`)
    2       1     level length L: 0, or 1..32 for a credential event
    3       L     clearance level, ASCII [A-Z0-9_]
    3+L     4     hour: whole hours since the Unix epoch (uint32)
    7+L     32    commitment (:func:`commitment`)

An entry is 39 to 71 bytes. It carries no subject, no pseudonym, no status
list index or URI, no key ID and no exact time: a reader of the log learns,
per event type (and per level for credential events), how many events
happened in which hour, and nothing that names or links a person. The
commitment binds the entry to the exact signed artifact (or record) so the
registry cannot swap it afterwards; it is computed over that artifact, which
always carries a signature (or, for an audit head, a hash chain value), so it
cannot be guessed from public facts. ``docs/formats.md`` states this privacy
cost.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import re
from dataclasses import dataclass

from clearance.errors import Reason, VerificationError

FORMAT_VERSION = 1
COMMITMENT_SIZE = 32
MAX_LEVEL_LENGTH = 32
_LEVEL = re.compile(r"[A-Z0-9_]{1,32}")
_COMMITMENT_DOMAIN = b"clearance/tlog-entry/v1\n"
_HOUR = 3600


class EventType(enum.IntEnum):
    """What happened. Stable numbers: they are in the log forever."""

    CREDENTIAL_ISSUED = 1
    CREDENTIAL_SUSPENDED = 2
    CREDENTIAL_REINSTATED = 3
    CREDENTIAL_REVOKED = 4
    BUNDLE_PUBLISHED = 5
    AGREEMENT_SIGNED = 6
    STATUS_LIST_PUBLISHED = 7
    VISIT_ASSURED = 8
    AUDIT_HEAD = 9

    @property
    def concerns_credential(self) -> bool:
        """Whether an entry of this type may carry a clearance level."""
        return self in _CREDENTIAL_EVENTS


_CREDENTIAL_EVENTS = frozenset(
    {
        EventType.CREDENTIAL_ISSUED,
        EventType.CREDENTIAL_SUSPENDED,
        EventType.CREDENTIAL_REINSTATED,
        EventType.CREDENTIAL_REVOKED,
    }
)


def commitment(event_type: EventType, artifact: bytes) -> bytes:
    """``SHA-256("clearance/tlog-entry/v1\\n" || type || artifact)``: what an entry commits to.

    ``artifact`` is the signed artifact exactly as published or handed out
    (a credential, bundle, agreement, status list token, visit assurance), or
    for an audit head the head hash itself.
    """
    return hashlib.sha256(_COMMITMENT_DOMAIN + bytes([event_type]) + artifact).digest()


@dataclass(frozen=True)
class TrustEvent:
    """One log entry.

    Attributes:
        event_type: what happened.
        level: the clearance level, for a personnel credential's events only.
        hour: whole hours since the Unix epoch when it happened.
        commitment: 32 bytes binding the entry to its artifact (:func:`commitment`).
    """

    event_type: EventType
    level: str | None
    hour: int
    commitment: bytes

    def __post_init__(self) -> None:
        if self.level is not None:
            if not self.event_type.concerns_credential:
                raise ValueError(f"a {self.event_type.name} entry carries no level")
            if not _LEVEL.fullmatch(self.level):
                raise ValueError("a level is 1 to 32 characters of A-Z, 0-9 and _")
        if not 0 <= self.hour < 2**32:
            raise ValueError("hour out of range")
        if len(self.commitment) != COMMITMENT_SIZE:
            raise ValueError("a commitment is 32 bytes")

    @classmethod
    def of(
        cls, event_type: EventType, artifact: bytes, *, at: datetime.datetime, level: str | None = None
    ) -> TrustEvent:
        """The entry for ``artifact`` at time ``at`` (kept to the hour).

        Raises:
            ValueError: a level on an event that takes none, a malformed level, or a naive time.
        """
        if at.tzinfo is None:
            raise ValueError("the event time must carry a time zone")
        return cls(event_type, level, int(at.timestamp()) // _HOUR, commitment(event_type, artifact))

    @property
    def time(self) -> datetime.datetime:
        """The start of the hour the event happened in (UTC)."""
        return datetime.datetime.fromtimestamp(self.hour * _HOUR, datetime.UTC)

    def encode(self) -> bytes:
        """The entry's bytes (format 1)."""
        level = (self.level or "").encode("ascii")
        return (
            bytes([FORMAT_VERSION, self.event_type, len(level)])
            + level
            + self.hour.to_bytes(4, "big")
            + self.commitment
        )

    @classmethod
    def decode(cls, data: bytes) -> TrustEvent:
        """Parse an entry strictly.

        Raises:
            VerificationError: ``entry_invalid``: another format version, an
                unknown event type, a bad level, or the wrong length.
        """
        if len(data) < 3 or data[0] != FORMAT_VERSION:
            raise VerificationError(Reason.ENTRY_INVALID, "not a format-1 log entry")
        try:
            event_type = EventType(data[1])
        except ValueError as exc:
            raise VerificationError(Reason.ENTRY_INVALID, f"unknown event type {data[1]}") from exc
        length = data[2]
        if length > MAX_LEVEL_LENGTH or len(data) != 3 + length + 4 + COMMITMENT_SIZE:
            raise VerificationError(Reason.ENTRY_INVALID, "a log entry has the wrong length")
        try:
            level = data[3 : 3 + length].decode("ascii") if length else None
            hour = int.from_bytes(data[3 + length : 7 + length], "big")
            return cls(event_type, level, hour, bytes(data[7 + length :]))
        except (UnicodeDecodeError, ValueError) as exc:
            raise VerificationError(Reason.ENTRY_INVALID, f"malformed log entry: {exc}") from exc
